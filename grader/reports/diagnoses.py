"""Diagnosis codes in plain words, with a hint a student can act on.

The table of record is ``grader.checks.public`` (``DIAGNOSES`` for the checks' codes,
``RUNNER_OUTCOMES`` for what the grading runner reports); the reports only read it.
"""
from __future__ import annotations

from grader.checks.public import RUNNER_OUTCOMES, describe

RUNNER_CODES = frozenset(RUNNER_OUTCOMES)

__all__ = ["RUNNER_CODES", "describe"]
