"""Diagnosis codes in plain words, with a hint a student can act on.

The table of record is ``grader.checks.public.DIAGNOSES``; this module reads it when that
room is installed and otherwise falls back to the copy below, so reports render before
(and independently of) the checks. Runner-level outcomes are added here: they never come
from a check.
"""
from __future__ import annotations

FALLBACK = {
    "missing": ("The class or function is not defined.",
                "Check its name against the assignment: it may have been renamed or deleted."),
    "not_implemented": ("It still raises NotImplementedError.",
                        "Replace the stub's `raise NotImplementedError()` with your code."),
    "exception": ("Your code raised an exception.",
                  "Read the error message; run the visible test cell to reproduce it."),
    "forward_wrong": ("forward() computes a wrong value, so backward() was not judged.",
                      "Compare forward() with the formula in the notes on a tiny example by hand."),
    "non_finite": ("A value or gradient became NaN or infinite.",
                   "Use a numerically stable formula: subtract the max before exp in softmax; "
                   "for sigmoid avoid exp of large positive numbers."),
    "operand_mutated": ("forward() or backward() changed an operand's value.",
                        "Never modify an operand in place (`x.value -= ...`, `out=`); make a new array."),
    "grad_shape": ("A gradient's shape differs from its value's shape.",
                   "Every `.grad` must have exactly the shape of its `.value`."),
    "bias_not_summed": ("A broadcast operand's gradient was not summed over the batch.",
                        "An operand broadcast in forward() (a bias of shape (O,) added to (N, O)) "
                        "gets the upstream gradient summed over the broadcast axes: use unbroadcast."),
    "matmul_transposed": ("A matrix-product gradient is transposed or uses the wrong axis.",
                          "For v = x @ W: x_bar = v_bar @ W.T and W_bar = x.T @ v_bar; check the shapes."),
    "upstream_ignored": ("backward() acts as if the upstream gradient were all ones.",
                         "Multiply by `self.grad`: the chain rule needs the gradient flowing in."),
    "assign_not_accumulate": ("`=` instead of `+=`: another consumer's contribution was overwritten.",
                              "A node used twice receives two contributions; always accumulate with `+=`."),
    "sign_error": ("The gradient has the wrong sign.",
                   "Re-derive the derivative and check each minus sign."),
    "wrong_factor": ("The gradient is off by a constant factor (1/N, 1/2, 2, ...).",
                     "Check the mean's 1/N, the 1/2 in the loss and the 2 in a square."),
    "loss_not_seeded": ("`loss.grad` was not set to ones before the reverse pass.",
                        "Backward must start from loss.grad = ones of the loss's shape."),
    "grads_not_zeroed": ("Gradients were not reset to zero at the start of Backward.",
                         "Zero every grad (components, parameters, inputs) before accumulating."),
    "wrong_order": ("Components were not processed in a valid reverse topological order.",
                    "Call backward() once per component, in reverse creation order."),
    "wrong_gradient": ("The gradient is wrong (no more specific cause found).",
                       "Check the derivative against a numerical gradient on a small input."),
}

RUNNER = {
    "timeout": ("The notebook did not finish within the time limit.",
                "Look for an infinite loop or very slow code; training cells should run in seconds."),
    "crashed": ("The process running the notebook crashed.",
                "Run the whole notebook from a fresh kernel (Kernel > Restart & Run All)."),
    "output_limit": ("The notebook printed too much output.",
                     "Remove prints inside loops before submitting."),
    "protocol_error": ("The grader could not read back your results.",
                       "Make sure your code returns NumPy arrays of numbers; ask a TA if this persists."),
}

RUNNER_CODES = frozenset(RUNNER)


def _table() -> dict:
    try:
        from grader.checks.public import DIAGNOSES
    except ImportError:
        return dict(FALLBACK)
    return {**FALLBACK, **DIAGNOSES}


def describe(code: str | None) -> tuple[str, str]:
    """(plain words, hint) for a diagnosis code; the code itself when it is unknown."""
    if not code:
        return "", ""
    entry = RUNNER.get(code) or _table().get(code)
    if entry is None:
        return code.replace("_", " "), ""
    if isinstance(entry, str):
        return entry, ""
    if isinstance(entry, dict):
        words = next((entry[k] for k in ("words", "text", "meaning", "plain", "message", "title")
                      if k in entry), code)
        return str(words), str(entry.get("hint", ""))
    words, *rest = entry
    return str(words), str(rest[0]) if rest else ""
