"""A realistic grading output folder (docs/ARCHITECTURE.md, "Grading output"), for the reports.

``make_grades(root)`` writes ``submissions/<student>.json``, ``results.json`` and
``gradebook.csv`` for the tensor_edf suite: students who pass everything, partial credit,
every diagnosis code at least once, loop-invariant failures with a drawable graph,
error / timeout / crashed submissions, hostile and output flags, and a student-controlled
error message carrying HTML. ``python -m tests.reports.fixtures DIR`` writes one by hand.
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ASSIGNMENT = "tensor_edf"
SUITE = [("unbroadcast", 3, "unbroadcast"), ("add", 2, "Add"), ("mul", 2, "Mul"), ("exp", 1, "Exp"),
         ("log", 1, "Log"), ("tanh", 1, "Tanh"), ("relu", 1, "ReLU"), ("sigmoid", 2, "Sigmoid"),
         ("vdot", 3, "VDot"), ("sum", 1, "Sum"), ("mean", 1, "Mean"),
         ("softmax_cross_entropy", 3, "SoftmaxCrossEntropy"), ("mse", 2, "MSE"),
         ("backward_mlp2", 3, "Backward")]
TARGET = {tid: target for tid, _, target in SUITE}
SCRIPT = "<script>alert('owned')</script>"

# mlp2: logits = VDot(Sigmoid(VDot(x, W1) + b1), W2) + b2, loss = SoftmaxCrossEntropy(logits, labels)
MLP2 = [{"name": "x", "kind": "Input", "args": []}, {"name": "labels", "kind": "Input", "args": []},
        {"name": "W1", "kind": "Parameter", "args": []}, {"name": "b1", "kind": "Parameter", "args": []},
        {"name": "W2", "kind": "Parameter", "args": []}, {"name": "b2", "kind": "Parameter", "args": []},
        {"name": "xW1", "kind": "VDot", "args": ["x", "W1"]}, {"name": "z1", "kind": "Add", "args": ["xW1", "b1"]},
        {"name": "h", "kind": "Sigmoid", "args": ["z1"]}, {"name": "hW2", "kind": "VDot", "args": ["h", "W2"]},
        {"name": "logits", "kind": "Add", "args": ["hW2", "b2"]},
        {"name": "loss", "kind": "SoftmaxCrossEntropy", "args": ["logits", "labels"]}]
SHARED = [{"name": "x", "kind": "Input", "args": []}, {"name": "one", "kind": "Parameter", "args": []},
          {"name": "u", "kind": "Add", "args": ["x", "one"]}, {"name": "s", "kind": "Sigmoid", "args": ["u"]},
          {"name": "y", "kind": "Mul", "args": ["u", "s"]}, {"name": "t", "kind": "Tanh", "args": ["u"]},
          {"name": "z", "kind": "Add", "args": ["y", "t"]}, {"name": "loss", "kind": "Sum", "args": ["z"]}]


def graph(nodes, broken, bad_node):
    """A drawable graph stopped at the step where ``broken`` ran its backward()."""
    comps = [n["name"] for n in nodes if n["kind"] not in ("Input", "Parameter")]
    processed = comps[comps.index(broken) + 1:][::-1]
    return {"nodes": nodes, "loss": "loss", "processed": processed, "broken": broken, "bad_node": bad_node}


def loop_failure(nodes, broken, bad_node, diagnosis, message, expected=None, got=None):
    comps = [n["name"] for n in nodes if n["kind"] not in ("Input", "Parameter")]
    kind = next(n["kind"] for n in nodes if n["name"] == broken)
    step = len(comps) - comps.index(broken)
    details = {"component": kind, "position": comps.index(broken), "step": step, "node": bad_node,
               "graph": graph(nodes, broken, bad_node), "case": 0}
    if expected is not None:
        details.update(expected=expected, got=got)
    return diagnosis, message, details


def arr(rng, *shape):
    return np.round(rng.normal(size=shape), 4)


def failures(rng):
    """diagnosis -> (test id, score, message, details) builders: one realistic failure each."""
    e = arr(rng, 2, 3)
    small = {
        "missing": ("relu", 0.0, "ReLU is not defined. Did you rename or delete the class?", {"component": "ReLU"}),
        "not_implemented": ("tanh", 0.0, "Tanh.backward raised NotImplementedError.",
                            {"component": "Tanh", "case": 0}),
        "exception": ("mse", 0.0, "MSE.backward raised ValueError: operands could not be broadcast together "
                      f"with shapes (5,3) (5,) {SCRIPT}", {"component": "MSE", "case": 1}),
        "forward_wrong": ("mean", 0.0, "Mean.forward: value wrong. Expected the mean of all elements; "
                          "got a value 5 times too large (divided by len(x) instead of x.size?).",
                          {"component": "Mean", "case": 0, "expected": 0.1372, "got": 0.686,
                           "max_abs_err": 0.5488}),
        "non_finite": ("sigmoid", 0.75, "Sigmoid.forward: value contains inf/nan for operand values of "
                       "magnitude 1000 (case 4). np.exp(-x) overflows for large negative x.",
                       {"component": "Sigmoid", "case": 3, "expected": {"shape": [2, 3, 4], "finite": True},
                        "got": {"shape": [2, 3, 4], "nan": 11, "inf": 0}}),
        "operand_mutated": ("softmax_cross_entropy", 0.4, "SoftmaxCrossEntropy.forward changed operand 0 "
                            "(logits) in place: its value after forward() differs from before.",
                            {"component": "SoftmaxCrossEntropy", "operand": 0, "case": 0,
                             "max_abs_err": 3.1822, "worst_index": [2, 4]}),
        "grad_shape": ("add", 0.6, "Add.backward: grad of operand 1 has shape (7, 5), its value has shape (5,).",
                       {"component": "Add", "operand": 1, "case": 0,
                        "expected": {"shape": [5]}, "got": {"shape": [7, 5]}}),
        "bias_not_summed": ("mul", 0.6, "Mul.backward: grad of operand 1 (shape (5,), broadcast over a batch "
                            "of 7) is wrong.", {"component": "Mul", "operand": 1, "case": 0,
                                                "expected": [1.204, -0.377, 2.113, 0.052, -1.671],
                                                "got": [0.172, -0.054, 0.302, 0.007, -0.239],
                                                "max_abs_err": 1.432, "worst_index": [4]}),
        "matmul_transposed": ("vdot", 0.0, "VDot.backward: grad of operand 1 (W, shape (4, 3)) is wrong.",
                              {"component": "VDot", "operand": 1, "case": 0,
                               "expected": (e @ arr(rng, 3, 3)).round(4).tolist()[:2],
                               "got": (e @ arr(rng, 3, 3)).round(4).tolist()[:2]}),
        "upstream_ignored": ("exp", 0.0, "Exp.backward: grad of operand 0 is wrong with a random upstream "
                             "gradient (right when the upstream gradient is all ones).",
                             {"component": "Exp", "operand": 0, "case": 0, "expected": e.tolist(),
                              "got": np.round(np.exp(e), 4).tolist()}),
        "sign_error": ("log", 0.0, "Log.backward: grad of operand 0 has the wrong sign.",
                       {"component": "Log", "operand": 0, "case": 0, "expected": [0.81, 1.37, 0.52],
                        "got": [-0.81, -1.37, -0.52]}),
        "wrong_factor": ("sum", 0.5, "Sum.backward: grad of operand 0 is 1/N times the expected gradient.",
                         {"component": "Sum", "operand": 0, "case": 1, "max_abs_err": 0.8333,
                          "max_rel_err": 0.8333, "worst_index": [0, 2],
                          "expected": {"shape": [6, 7]}, "got": {"shape": [6, 7]}}),
        "wrong_gradient": ("unbroadcast", 0.5, "unbroadcast: returned the wrong array for a gradient of "
                           "shape (2, 3, 4) and target shape (3, 1).",
                           {"case": 2, "expected": [[0.917], [-2.104], [1.332]],
                            "got": [[0.301, 0.288, -0.011, 0.339]]}),
    }
    loops = {
        "assign_not_accumulate": loop_failure(
            SHARED, "s", "u", "assign_not_accumulate",
            "Backward on graph shared_subexpr: the loop invariant broke at reverse step 4, after "
            "Sigmoid 's' ran backward(): the grad of 'u' is wrong. u has three consumers (s, y, t); "
            "the contributions from y and t were overwritten.", expected=0.8813, got=0.1966),
        "bias_not_summed_loop": loop_failure(
            MLP2, "z1", "b1", "bias_not_summed",
            "Backward on graph mlp2: the loop invariant broke at reverse step 5, after Add 'z1' ran "
            "backward(): the grad of 'b1' has shape (3, 16), its value has shape (16,)."),
        "loss_not_seeded": loop_failure(
            MLP2, "loss", "logits", "loss_not_seeded",
            "Backward on graph mlp2: before any step, loss.grad should be 1; got 0. Every gradient "
            "downstream is then zero."),
        "grads_not_zeroed": ("backward_mlp2", 0.5, "Backward called twice in a row on graph mlp2: the "
                             "second call doubled every parameter's grad.",
                             {"component": "Backward", "node": "W2", "case": 1, "max_rel_err": 1.0}),
        "wrong_order": loop_failure(
            SHARED, "y", "s", "wrong_order",
            "Backward on graph shared_subexpr: component 't' ran backward() after 'y' although it "
            "was created later; not a reverse topological order."),
    }
    return small, loops


# (fixture key, corpus variant, test id, check, target, graph or shapes): real Results from the
# public checks on the mutation corpus, used where the checks are installed and agree.
REAL = [("assign_not_accumulate", "add_assign_instead_of_accumulate", "backward_mlp2", "backward", "shared_subexpr"),
        ("bias_not_summed_loop", "add_bias_grad_not_unbroadcast", "backward_mlp2", "backward", "mlp2"),
        ("loss_not_seeded", "backward_not_seeded", "backward_mlp2", "backward", "mlp2"),
        ("grads_not_zeroed", "backward_not_zeroed", "backward_mlp2", "backward", "mlp2"),
        ("wrong_order", "backward_forward_order", "backward_mlp2", "backward", "mlp2"),
        ("upstream_ignored", "mul_upstream_ignored", "mul", "component", "Mul"),
        ("matmul_transposed", "vdot_W_grad_transposed", "vdot", "component", "VDot"),
        ("sign_error", "sce_onehot_minus_p", "softmax_cross_entropy", "component", "SoftmaxCrossEntropy"),
        ("forward_wrong", "sigmoid_forward_sign", "sigmoid", "component", "Sigmoid")]


def real_failures() -> dict:
    """fixture key -> (test id, score, message, details) computed by grader.checks.public."""
    try:
        from grader.checks import public
        from tests.corpus import HERE, load_variant
    except ImportError:
        return {}
    out = {}
    for key, variant, tid, kind, what in REAL:
        try:
            ns, expect = load_variant(HERE / "buggy" / f"{variant}.py")
            if kind == "backward":
                r = public.check_backward(ns, graph=what, seed=0)
            else:
                r = public.check_component(ns, what, seed=0)
        except Exception:  # the checks are another room's work in progress: fall back
            continue
        d = r.to_json()
        if not d["passed"] and d["diagnosis"] == expect["diagnosis"]:
            out[key] = (tid, d["score"], d["message"], d["details"])
    return out


def record(student, results, *, status="graded", flags=(), notes=(), cells=None, seconds=None,
           isolation="bwrap", error=None):
    """A submission record; ``results`` maps test id -> (score, diagnosis, message, details)."""
    tests, total, mx = [], 0.0, 0.0
    for tid, pts, target in SUITE:
        score, diag, msg, det = results.get(tid, (1.0, None, "", {}))
        passed = score >= 1.0
        tests.append({"id": tid, "grade_id": f"test_{tid}", "target": target,
                      "points": round(pts * score, 2), "max_points": pts,
                      "result": {"test_id": tid, "passed": passed, "score": score, "message": msg,
                                 "diagnosis": None if passed else diag, "details": det}})
        total += round(pts * score, 2)
        mx += pts
    sha = hashlib.sha256(student.encode()).hexdigest()
    return {"student": student, "assignment": ASSIGNMENT, "sha256": sha,
            "source": f"submitted/{student}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", "status": status,
            "isolation": isolation, "notes": list(notes),
            "cells": cells if cells is not None else [{"id": f"{t.lower()}-solution", "status": "ok"}
                                                      for _, _, t in SUITE[:3]],
            "tests": tests, "total": round(total, 2), "max": mx, "flags": list(flags),
            "seconds": seconds if seconds is not None else 0.2, **({"error": error} if error else {})}


def runner_outcome(code, message):
    return {tid: (0.0, code, message, {}) for tid, _, _ in SUITE}


def build_records(n_random: int = 18, seed: int = 0, real: bool = True) -> list[dict]:
    """``real``: use the public checks' own Results where they are available."""
    rng = np.random.default_rng(seed)
    small, loops = failures(rng)
    for key, entry in (real_failures() if real else {}).items():
        if key in small:
            small[key] = entry
        else:
            loops[key] = entry

    def res(diag):
        if diag in small:
            tid, score, msg, det = small[diag]
            return tid, (score, diag, msg, det)
        entry = loops[diag]
        if len(entry) == 4:
            tid, score, msg, det = entry
            return tid, (score, diag.removesuffix("_loop"), msg, det)
        code, msg, det = entry
        return "backward_mlp2", (0.0 if code != "wrong_order" else 0.25, code, msg, det)

    def with_(*diags):
        return dict(res(d) for d in diags)

    records = [
        record("alice", {}),
        record("bob", with_("non_finite")),
        record("carol", with_("bias_not_summed_loop", "bias_not_summed")),
        record("dave", with_("assign_not_accumulate", "upstream_ignored")),
        record("erin", with_("missing", "not_implemented"),
               cells=[{"id": "relu-solution", "status": "error", "error": "NameError: name 'Relu' is not defined"}]),
        record("frank", with_("exception", "forward_wrong"),
               cells=[{"id": "mse-solution", "status": "error",
                       "error": f"ValueError: operands could not be broadcast {SCRIPT}"}]),
        record("grace", with_("operand_mutated", "grad_shape", "matmul_transposed")),
        record("heidi", with_("sign_error", "wrong_factor", "wrong_gradient", "loss_not_seeded")),
        record("ivan", with_("grads_not_zeroed", "upstream_ignored", "sign_error")),
        record("judy", with_("wrong_order")),
        record("kim", runner_outcome("timeout", "The notebook did not finish within 60 s (cell "
                                     "'training-loop')."), status="timeout", seconds=60.0,
               cells=[{"id": "training-loop", "status": "timeout", "error": "timed out after 60 s"}]),
        record("leo", runner_outcome("crashed", "The grading process died (killed by signal 9: memory limit)."),
               status="crashed", seconds=3.1),
        record("mallory", {**runner_outcome("protocol_error", "The child sent a malformed reply."),
                           **with_("upstream_ignored")},
               status="error", error="the notebook's JSON is not valid after cell 12",
               flags=["hostile: tried to read /work/main/reference/operations.py",
                      "suspicious: cell sigmoid-solution imports from os",
                                      "hostile: patched builtins.__import__", "output truncated"],
               cells=[{"id": "sigmoid-solution", "status": "neutralised",
                       "error": "os.system called: blocked"}]),
        record("niaj", {"sigmoid": (0.0, "output_limit", "Output exceeded 1 MB and was truncated.", {})},
               flags=["output truncated"], notes=["cell test_sigmoid was deleted; restored from the source"]),
        record(f"o'brien {SCRIPT}", with_("upstream_ignored")),
    ]
    common = ["bias_not_summed", "upstream_ignored", "assign_not_accumulate", "non_finite", "wrong_factor",
              "matmul_transposed", "bias_not_summed_loop", "sign_error", "grad_shape"]
    weights = np.array([6, 5, 4, 4, 3, 3, 2, 1, 1], dtype=float)
    for i in range(n_random):
        k = int(rng.integers(0, 4))
        diags = set(rng.choice(common, size=k, replace=False, p=weights / weights.sum()))
        if "bias_not_summed_loop" in diags and "assign_not_accumulate" in diags:
            diags.discard("assign_not_accumulate")
        records.append(record(f"student{i + 1:02d}", with_(*diags), seconds=float(np.round(rng.uniform(0.1, 2), 2))))
    return sorted(records, key=lambda r: r["student"])


def make_grades(root, n_random: int = 18, seed: int = 0) -> Path:
    """Write a grading output folder under ``root`` and return it."""
    root = Path(root)
    (root / "submissions").mkdir(parents=True, exist_ok=True)
    records = build_records(n_random, seed)
    for r in records:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in r["student"])
        (root / "submissions" / f"{safe}.json").write_text(json.dumps(r, indent=1), encoding="utf-8")
    (root / "results.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
    with open(root / "gradebook.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", *[tid for tid, _, _ in SUITE], "total", "max"])
        for r in records:
            w.writerow([r["student"], *[t["points"] for t in r["tests"]], r["total"], r["max"]])
    return root


if __name__ == "__main__":
    print(make_grades(sys.argv[1] if len(sys.argv) > 1 else "build/fixture_grades"))
