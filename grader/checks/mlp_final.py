"""The final-network case of the accuracy tests (mlp_training and conv_edf): the notebook's
``predict`` must follow its final network, for two sets of weights the grader sets. When the
student's network cannot run it (a function with its own test is wrong), the probe also runs
``predict`` on a network the harness builds and binds as ``final_model`` (``alt``): either
record passes; ``alt_allowed`` keeps that from ever replacing another classifier.
"""
import numpy as np

from collections.abc import Callable

from .base import CaseResult, _err, _fail, _graph_lists
from .mlp_net import _mlp_error, _MlpStage
from .types import MlpRecord, MlpSpec, Namespace, Opaque


def follows_locally(rec: MlpRecord) -> bool:
    """In the child: whether a final-case record looks like predict following the network
    (the judge decides; this only tells the probe to try the harness's network too)."""
    try:
        preds, logits = rec["pred"], rec["logits"]
        return (len(preds) == len(logits) == 2 and not np.array_equal(logits[0], logits[1])
                and all(np.array_equal(p, np.argmax(z, axis=-1)) for p, z in zip(preds, logits)))
    except Exception:  # noqa: BLE001 - anything odd: try the harness's network
        return False


def judge_final_follows(spec: MlpSpec, record: MlpRecord, where: str = "predict(X) of your final network") -> CaseResult:
    """``predict`` returned the argmax of the final network's logits for X, for two sets of
    weights the grader set (so it follows the network, not a table or another model). The
    record's ``alt`` is the same on a network the harness built and bound as ``final_model``
    (the student's network may be what is wrong, charged on its own test): either passes."""
    first = _final_follows(spec, record, where)
    alt = record.get("alt") if isinstance(record, dict) else None
    if first.passed or not isinstance(alt, dict):
        return first
    second = _final_follows(spec, alt, where)
    if not second.passed:
        return first
    return CaseResult(True, details={"harness_network": True})


def alt_allowed(ns: Namespace, network: str = "MLP") -> bool:
    """In the child: whether ``predict`` may be judged on the harness's network bound as
    ``final_model``: only when the notebook's ``final_model`` is absent or is no other model
    (no ``predict`` of its own unless it is the notebook's MLP). A classifier named
    ``final_model`` (scikit-learn, a lookup) never has its place taken."""
    if not isinstance(ns, dict):
        return False
    model, cls = ns.get("final_model"), ns.get(network)
    if model is None or not hasattr(model, "predict"):
        return True
    return isinstance(cls, type) and isinstance(model, cls)


def _final_follows(spec: MlpSpec, record: MlpRecord, where: str) -> CaseResult:
    if "error" in record:
        return _mlp_error(record, where)
    preds, logits = record.get("pred"), record.get("logits")
    n = len(spec["X"])
    if not (isinstance(preds, list) and isinstance(logits, list) and len(preds) == len(logits) == 2):
        return _fail("protocol_error", where, "the probe record is malformed.")
    for pred, z in zip(preds, logits):
        if not isinstance(pred, np.ndarray) or pred.shape != (n,):
            return _fail("not_from_model", where, f"returned shape {getattr(pred, 'shape', None)}, expected ({n},).")
        if not isinstance(z, np.ndarray) or z.ndim != 2 or z.shape[0] != n:
            return _fail("not_from_model", where, "did not run the final network on X: after predict(X) its "
                         "logits node does not hold one row per row of X.")
        wrong = int(np.sum(pred != np.argmax(z, axis=-1)))
        if wrong:
            return _fail("not_from_model", where, f"{wrong} of {n} predictions differ from the argmax of the "
                         "final network's logits for X: predict must use the trained network (final_model.predict).")
    if np.array_equal(logits[0], logits[1]):
        return _fail("not_from_model", where, "gave the same logits for two different sets of weights set into "
                     "the final network: predict must run Forward() with the network's current weights.")
    return CaseResult(True)


def final_case(ns: Namespace, rec: MlpRecord, network: str, real: Callable[[], None] | None, why: str,
               build: Callable[[], Opaque], on: Callable[[MlpRecord, Opaque], None]) -> None:
    """The final case's probe, for the MLP and the CNN: ``real()`` records the predictions on
    the notebook's network (``None`` when the graph holds none: ``why`` says so); unless they
    follow it, ``on(alt, net)`` records them again into ``rec["alt"]`` on the harness's network
    ``build()``, bound as ``final_model`` meanwhile (where ``alt_allowed``)."""
    if real is not None:
        try:
            real()
        except (Exception, SystemExit) as e:
            if not isinstance(ns, dict):
                raise
            rec.update(error=_err(e), error_at="predict")
        if follows_locally(rec):
            return
    elif not isinstance(ns, dict):
        raise _MlpStage(why)
    else:
        rec.update(error={"type": "contract", "message": why}, error_at="final network")
    if not alt_allowed(ns, network):
        return
    alt = rec["alt"] = {}
    had, old = "final_model" in ns, ns.get("final_model")
    with _graph_lists(ns):
        try:
            net = ns["final_model"] = build()
            on(alt, net)
        except (Exception, SystemExit) as e:
            alt.update(error=_err(e), error_at="predict")
        finally:
            if had:
                ns["final_model"] = old
            else:
                ns.pop("final_model", None)
