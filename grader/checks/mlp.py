"""Check kind ``mlp_accuracy``: a trained model's accuracy on held-out data. The specs carry
the test inputs only; the labels stay with the judge (``hidden`` loads both from the
reference's data split), so this kind has no public form in a suite.
"""
import numpy as np

from .base import CaseResult, Kind, Result, _arr, _err, _fail, _need, _quiet, combine, probe, register
from .compare import _error_case, _valid


def _probe_mlp(ns, spec: dict) -> dict:
    predict = _need(ns, spec.get("target") or "predict")
    try:
        return {"pred": _arr(predict(np.array(spec["X"])))}
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": "call"}


def judge_mlp_accuracy(spec, record, labels, target) -> CaseResult:
    where = f"{spec.get('target') or 'predict'}(X_test)"
    try:
        if "error" in record:
            return _error_case(record, where)
        labels = np.asarray(labels)
        pred = record.get("pred")
        bad = _valid(pred, labels.shape)
        if bad:
            return _fail("forward_wrong", where, f"the predictions {bad}.")
        acc = float(np.mean(pred == labels))
        if acc < target:
            return _fail("forward_wrong", where, f"accuracy {acc:.3f} on held-out data, needs {target:.3f}.",
                         {"accuracy": acc, "target": target})
        return CaseResult(True, details={"accuracy": acc})
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_mlp_accuracy(ns, X, y, target=0.95, predict="predict", test_id=None) -> Result:
    spec = {"check": "mlp_accuracy", "target": predict, "X": np.asarray(X)}
    with _quiet():
        return combine(test_id or "accuracy", [judge_mlp_accuracy(spec, probe(ns, spec), y, target)])


register(Kind("mlp_accuracy", probe=_probe_mlp, judge=judge_mlp_accuracy))
