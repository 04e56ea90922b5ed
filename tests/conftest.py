"""Fixed randomness for the whole test run.

``backprop generate`` gives every course a random secret, from which grading derives each
submission's hidden seeds (``grader.grading.seeds``). Courses generated inside the tests get
one fixed secret instead, so a test that grades a class faces the same hidden cases on every
run (a fixed seed, as everywhere in the tests). Courses made by a ``backprop generate``
subprocess still get a random one; tests/grading/test_hidden_seeds.py checks both.
"""
from __future__ import annotations

import pytest

TEST_SECRET = bytes(range(101, 133))  # 32 bytes


@pytest.fixture(scope="session", autouse=True)
def fixed_course_secret():
    from grader.grading import seeds

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(seeds, "new_secret", lambda: TEST_SECRET)
        yield TEST_SECRET
