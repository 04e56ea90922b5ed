"""``backprop audit``: is a hidden suite adequate for the assignment it grades?

Rooms of the audit, one concern each:

- ``units``: the graded units (methods and functions of solution cells), each mapped to the
  one test that owns it, derived from the template and ``suite.toml``.
- ``mutants``: mutants of every unit, derived from the reference's AST by operators.
- ``namespace``: a notebook namespace built from an assignment's cells (source or release
  form), with definitions overridden by a mutant's.
- ``run``: grades mutants with every hidden test under several seed sets, in a pool of
  worker processes with a per-mutant deadline.
- ``domains``: equivalence by evaluation on random inputs, independent of the suite.
- ``baselines``: the lazy student's notebooks (stubs, no-ops, forward only, backward no-op).
- ``leaks``: course-wide, given code that hands out a later assignment's solution.
- ``coverage``: branch and kink coverage of the reference under the hidden specs.
- ``report``: verdicts, criteria, the kill matrix as a table and JSON.
"""
