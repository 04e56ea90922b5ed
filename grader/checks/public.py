"""The public checks as one namespace (what ``backprop_checks.py`` holds for every kind).

A facade over the child-safe modules (``base``, ``compare``, ``contract``, ``graphs``,
``elementary`` and one module per check kind): ``from grader.checks.public import X``
and ``public.X`` keep working for every name those modules define. Students get a
bundle of only the modules their assignment's kinds need (``bundle.py``).

Numeric gradients, float64 throughout
-------------------------------------
* Inputs are drawn from per-class domains away from kinks and singularities: ReLU
  inputs satisfy |x| >= 0.1, Log inputs lie in [0.5, 3], Exp inputs in [-2, 2];
  upstream grads are random normals (never ones), 0-d upstreams are +-[1.3, 2.7].
* Central differences with step H = 1e-6. Truncation error is H^2/6 * |f'''| <= 3e-12
  on these domains (Log at 0.5 has f''' = 16, the worst case); rounding error is about
  eps * M / H = 2.2e-10 * M, M the magnitude of the numbers in the computation.
* Fast path (torch's gradcheck "fast mode"): one random projection per case. With a
  random direction u and the random upstream v, v^T J u from one central difference
  (2 forward evaluations) is compared with sum_i <grad_i, u_i> from the student's
  backward. The per-element Jacobian (2 evaluations per operand element) is computed
  only when that fails, to localise the worst element and to diagnose.
* Tolerance: |got - want| <= RTOL * S + ATOL * (1 + M). RTOL = 1e-5, ATOL = 1e-7,
  S = |want| per element (for a projection: sum_j |v_j (J u)_j|, so cancellation in
  the projected sum cannot tighten it), M = sum|v| * (max|f| + max|x|) for a
  component, max |node value| for a graph. The noise bound above is >= 400x below
  this; every classic bug (sign, factor, missing term, ignored upstream, transposed
  matmul) is an O(|grad|) error. Measured over 300 seeds x 13 classes: the reference's
  worst projection error is 7e-4 of the tolerance; the smallest error of a wrong
  gradient in the mutation corpus is 120x the tolerance. No false failure of the
  reference or the correct corpus variants over 1000 seeds per class, 500 seeds of
  every suite.toml component test (including scale-1000 cases) and 250 per graph.
* Comparisons with the reference (hidden, exact) use RTOL_EXACT = 1e-6,
  ATOL_EXACT = 1e-8 * (1 + max|want|): students' correct but differently written
  formulas agree with the reference to ~1e-13.
* A random projection misses a wrong gradient only if the error is orthogonal to u:
  with Gaussian u the chance that |<e, u>| falls below 1e-5 of its typical size is
  about 1e-5 per case, and the deterministic checks (shape, accumulation, mutation,
  forward) do not depend on it.
"""
from __future__ import annotations

import importlib

from . import registry
from .bundle import child_safe_modules

for _name in child_safe_modules():
    _module = importlib.import_module(f"{__package__}.{_name}")
    globals().update({k: v for k, v in vars(_module).items() if not k.startswith("__")})
del _name, _module, registry, importlib
