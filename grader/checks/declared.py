"""The component contracts declared in ``reference/`` (``declare(Class, ...)`` beside each
class), as plain data: ``DECLARED`` maps a class name to its operands, shapes, domain,
formula, feedback text and hints.

Trusted: this module imports the reference. It never ships: the student bundle carries
``DECLARED`` as a literal written at generate time (``bundle_text``), so a child gets
the contracts' data and none of the reference's code.
"""
from __future__ import annotations

import pprint

import reference  # noqa: F401  (importing the package runs every declare())
from reference.contract import declared_data

DECLARED = declared_data()


def bundle_text() -> str:
    """This module as the bundle holds it: the declarations as one literal."""
    return ('"""The component contracts declared beside the reference\'s classes, as data."""\n\n'
            f"DECLARED = {pprint.pformat(DECLARED, width=110, sort_dicts=False)}\n")
