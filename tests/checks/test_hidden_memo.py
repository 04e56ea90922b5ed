"""The reference's expectations are computed once per spec and shared safely across threads."""
import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import reference
from grader.checks import hidden
from grader.checks import public as P

SIGMOID = {"id": "sigmoid", "check": "component", "target": "Sigmoid",
           "hidden": {"seeds": [3, 4], "shapes": [[[5, 3]], [[2]]]}}
LOOP = {"id": "loop", "check": "backward_loop", "target": "Backward", "assignment": "tensor_edf",
        "hidden": {"seeds": [5], "graphs": ["mlp2", "shared_subexpr", "random:8"]}}


def _verdicts(test, ns):
    specs = hidden.build_specs(test)
    return hidden.judge(test, specs, [P.probe(ns, s) for s in specs]).to_json()


def test_equal_specs_share_one_key_and_different_ones_do_not():
    a, = hidden.build_specs({**SIGMOID, "hidden": {"seeds": [3], "shapes": [[[5, 3]]]}})[:1]
    b = copy.deepcopy(a)
    assert a is not b and hidden.spec_key(a) == hidden.spec_key(b)
    b["operands"][0] = b["operands"][0] + 1e-12
    assert hidden.spec_key(a) != hidden.spec_key(b)
    assert hidden.spec_key({"x": np.zeros(2, np.float32)}) != hidden.spec_key({"x": np.zeros(2)})


def test_second_judgement_reuses_the_expectation_and_agrees():
    hidden._MEMO.clear()
    first = _verdicts(SIGMOID, reference)
    n = len(hidden._MEMO)
    assert n == len({hidden.spec_key(s) for s in hidden.build_specs(SIGMOID)})  # equal cases share
    assert _verdicts(SIGMOID, reference) == first and first["passed"]
    assert len(hidden._MEMO) == n


def test_loop_expectations_are_keyed_by_the_processing_order():
    spec = hidden.build_specs(LOOP)[0]
    n = len(spec["nodes"]) - sum(1 for x in spec["nodes"] if x["kind"] in ("Input", "Parameter"))
    hidden._MEMO.clear()
    rec = P.probe(reference, spec)
    hidden.judge_case(LOOP, spec, rec)
    truncated = dict(rec, steps=rec["steps"][: n // 2])
    hidden.judge_case(LOOP, spec, truncated)
    assert len(hidden._MEMO) == 2


def test_threads_judging_at_once_agree_with_one_thread():
    """Grading judges from several worker threads (probes run in separate children):
    verdicts judged concurrently equal verdicts judged one by one."""
    buggy = dict(vars(reference), np=np)
    exec('''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = 1 / (1 + np.exp(-self.x.value))
    def backward(self):
        self.x.grad += self.value * (1 - self.value)
''', buggy)
    jobs = []
    for test in (SIGMOID, LOOP):
        specs = hidden.build_specs(test)
        for ns in (reference, buggy):
            jobs.append((test, specs, [P.probe(ns, s) for s in specs]))
    jobs *= 4

    def judge(job):
        return hidden.judge(*job).to_json()

    hidden._MEMO.clear()
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(judge, jobs))
    hidden._MEMO.clear()
    serial = [judge(job) for job in jobs]
    assert parallel == serial
    assert [r["passed"] for r in serial[:4]] == [True, False, True, False]


def test_a_forged_endless_order_is_judged_and_keys_the_memo_by_its_valid_prefix():
    spec = hidden.build_specs(LOOP)[0]
    rec = P.probe(reference, spec)
    forged = dict(rec, steps=rec["steps"] * 2000)  # every component again and again
    hidden._MEMO.clear()
    verdict = hidden.judge_case(LOOP, spec, forged)
    assert not verdict.passed and verdict.diagnosis == "wrong_order"
    (key,) = hidden._MEMO
    assert len(key[2]) == len(rec["steps"])  # the valid prefix, not 2000 copies
