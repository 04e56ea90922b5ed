"""The public checks as one namespace (what ``backprop_checks.py`` holds for every kind).

A facade over the child-safe modules (``base``, ``compare``, ``contract``, ``graphs``,
``elementary`` and one module per check kind): ``from grader.checks.public import X``
and ``public.X`` keep working for every name those modules define. Students get a
bundle of only the modules their assignment's kinds need (``bundle.py``).
Tolerances and their derivation: ``compare.py``.
"""
from __future__ import annotations

import importlib

from . import registry
from .bundle import child_safe_modules

for _name in child_safe_modules():
    _module = importlib.import_module(f"{__package__}.{_name}")
    globals().update({k: v for k, v in vars(_module).items() if not k.startswith("__")})
del _name, _module, registry, importlib
