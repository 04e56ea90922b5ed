"""Check kind ``mlp_accuracy``: how well the student's trained network classifies digits.

Visible (in the notebook): ``predict(X_test)`` against ``y_test``. Hidden: the specs say
``learning`` and carry the training half of a re-drawn task (``hidden`` builds them); the
student's ``build_mlp`` + ``train`` train a fresh network with ``final_settings`` from the
grader's seed, the child returns the trained weights and whether only ``train_step`` changed
them, and ``judge_mlp_learning`` (called by ``hidden`` with the held-back half, which never
enters the child) measures them with the correct forward pass.
"""
import math
from collections.abc import Callable

import numpy as np

from .base import CaseResult, Kind, Result, _arr, _err, _fail, _get, _graph_lists, _need, _quiet, combine, probe, register
from .cnn import _probe_cnn_final, _probe_cnn_learning
from .compare import _error_case, _valid
from .mlp_net import (MLP_LIMITS, MLP_MAX_LAYERS, _MlpStage, _mlp_call, _mlp_error, _mlp_guard,
                      _mlp_numeric_layers, _mlp_pairs, _mlp_setname, _mlp_shapes, _mlp_symmetric, _mlp_values,
                      mlp_forward)
from .types import MlpRecord, MlpSpec, Namespace, Opaque, Record


def _probe_mlp(ns: Namespace, spec: dict) -> dict:
    if spec.get("learning"):
        return _probe_mlp_learning(ns, spec)
    if spec.get("cnn_learning"):
        return _probe_cnn_learning(ns, spec)
    if spec.get("cnn_final"):
        return _probe_cnn_final(ns, spec)
    predict = _need(ns, spec.get("target") or "predict")
    try:
        return {"pred": _arr(predict(np.array(spec["X"])))}
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": "call"}


def judge_mlp_accuracy(spec: MlpSpec, record: MlpRecord, labels: np.ndarray, target: float) -> CaseResult:
    """The notebook's own test: ``predict(X_test)`` against ``y_test``, in the notebook."""
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
            return _fail("forward_wrong", where, f"accuracy {acc:.3f} on these {len(labels)} digits, needs {target:.3f}.",
                         {"accuracy": acc, "target": target})
        return CaseResult(True, details={"accuracy": acc})
    except Exception as e:
        return _fail("protocol_error", where, f"the probe record could not be judged ({type(e).__name__}).")


def check_mlp_accuracy(ns: Namespace, X: np.ndarray, y: np.ndarray, target: float = 0.95, predict: str = "predict",
                       test_id: str | None = None) -> Result:
    spec = {"check": "mlp_accuracy", "target": predict, "X": np.asarray(X)}
    with _quiet():
        return combine(test_id or "accuracy", [judge_mlp_accuracy(spec, probe(ns, spec), y, target)])


def mlp_settings(settings: Opaque, n_rows: int) -> tuple[tuple[int, ...], str, float, int, int]:
    """``final_settings`` checked against the notebook's limits: (sizes, activation, eta,
    epochs, batch_size), or ``_MlpStage`` saying what is wrong."""
    try:
        sizes = tuple(int(s) for s in settings["sizes"])
        act, eta = str(settings["activation"]), float(settings["eta"])
        epochs, batch = int(settings["epochs"]), int(settings["batch_size"])
    except Exception as e:
        raise _MlpStage(f"final_settings needs sizes, activation, eta, epochs and batch_size ({type(e).__name__}: {e})")
    L = MLP_LIMITS
    if len(sizes) < 2 or sizes[0] != L["inputs"] or sizes[-1] != L["classes"]:
        raise _MlpStage(f"final_settings['sizes'] = {sizes} must start with {L['inputs']} and end with {L['classes']}")
    if len(sizes) - 2 > L["hidden_layers"] or any(not 1 <= s <= L["width"] for s in sizes[1:-1]):
        raise _MlpStage(f"final_settings['sizes'] = {sizes}: at most {L['hidden_layers']} hidden layers of "
                        f"1 to {L['width']} units")
    if act not in ("relu", "tanh"):
        raise _MlpStage(f"final_settings['activation'] = {act!r} must be 'relu' or 'tanh'")
    if not (math.isfinite(eta) and eta > 0):
        raise _MlpStage(f"final_settings['eta'] = {eta} must be a positive number")
    if not 1 <= epochs <= L["epochs"]:
        raise _MlpStage(f"final_settings['epochs'] = {epochs} must be 1 to {L['epochs']}")
    if not 1 <= batch <= n_rows:
        raise _MlpStage(f"final_settings['batch_size'] = {batch} must be 1 to {n_rows}")
    return sizes, act, eta, epochs, batch


def _weights_moved(pairs: list, last: list) -> bool:
    """Whether any weight differs from its copy in ``last`` (NaN equal to NaN): the same
    bytes first, which is most steps' answer at a fraction of a comparison's cost."""
    now = [p.value for pair in pairs for p in pair]
    for a, b in zip(now, last):
        a = np.asarray(a)
        if not (a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()) \
                and not np.array_equal(a, b, equal_nan=True):
            return True
    return False


@_mlp_guard
def _probe_mlp_learning(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    build, train = _need(ns, "build_mlp"), _need(ns, "train")
    X, y, seed = np.array(spec["X"]), np.array(spec["y"]), int(spec["seed"])
    rec["stage"] = "final_settings"
    sizes, act, eta, epochs, batch = mlp_settings(_need(ns, "final_settings"), len(X))
    rec["settings"] = {"sizes": list(sizes), "activation": act, "eta": eta, "epochs": epochs, "batch_size": batch}
    step = _need(ns, "train_step")
    chain = {"calls": 0, "broken": 0, "other_eta": 0, "other_model": 0}
    batch_losses = []  # what train_step returned, batch by batch (train's history is train's test)

    def recording_step(m: Opaque, Xb: np.ndarray, yb: np.ndarray, eta_b: float) -> Opaque:
        # the weights must evolve by train_step alone, from build_mlp's to the last step's
        chain["broken"] += _weights_moved(pairs, chain["last"])
        chain["other_eta"] += eta_b != eta
        chain["other_model"] += m is not model
        loss = step(m, Xb, yb, eta_b)
        if len(batch_losses) < 100_000:
            batch_losses.append(_arr(loss))
        chain["calls"] += 1
        chain["last"] = [np.array(p.value) for pair in pairs for p in pair]
        return loss

    with _graph_lists(ns):
        model = _mlp_call(rec, "build_mlp", build, sizes, act, seed=seed, dtype=np.float64)
        pairs = _mlp_pairs(model)
        chain["last"] = [np.array(p.value) for pair in pairs for p in pair]
        _mlp_setname(ns, "train_step", recording_step)
        try:
            _mlp_call(rec, "train", train, model, X, y, eta, epochs, batch_size=batch, seed=seed)
        finally:
            _mlp_setname(ns, "train_step", step)
        chain["broken"] += _weights_moved(pairs, chain["last"])
        rec["chain"] = {k: v for k, v in chain.items() if k != "last"}
        graph = _get(ns, "params") or []
        # the weights judged must be the ones SGD trained: the graph's own Parameters
        rec["in_graph"] = all(any(p is q for q in graph) for pair in pairs for p in pair)
        rec["layers"] = _mlp_values(model)
    rec["losses"] = batch_losses


def judge_mlp_learning(spec: MlpSpec, record: MlpRecord, X_eval: np.ndarray, y_eval: np.ndarray, target: float) -> CaseResult:
    """Accuracy of the trained weights the child returned, measured here with the correct
    forward pass on digits the child never had; the cause named where the evidence allows."""
    where = "your final network, trained by build_mlp + train with final_settings from the grader's seed"
    if "error" in record:
        return _mlp_error(record, where)
    settings = record.get("settings") if isinstance(record.get("settings"), dict) else {}
    try:
        sizes, act = tuple(int(s) for s in settings["sizes"]), str(settings["activation"])
    except Exception:
        return _fail("protocol_error", where, "the trained network's settings could not be read.")
    if len(sizes) < 2 or sizes[0] != np.shape(X_eval)[1] or act not in ("relu", "tanh") or len(sizes) > MLP_MAX_LAYERS + 1:
        return _fail("bad_settings", where, f"sizes {sizes}, activation {act!r}.")
    layers, why = _mlp_numeric_layers(record.get("layers"), _mlp_shapes(sizes))
    if why:
        return _fail("wrong_graph", where, f"model.layers after training: {why}.")
    if record.get("in_graph") is not True:
        return _fail("not_from_model", where, "model.layers are not the parameters of the EDF graph that "
                     "train trained.")
    chain = record.get("chain") if isinstance(record.get("chain"), dict) else {}
    if not chain.get("calls"):
        return _fail("outside_train_step", where, "train never called train_step.")
    if chain.get("broken") or chain.get("other_model") or chain.get("other_eta"):
        return _fail("outside_train_step", where, "the weights changed outside train_step while training, or "
                     "train_step got another model or learning rate.")
    losses = record.get("losses")
    losses = [float(v) for v in losses if isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "biuf"] \
        if isinstance(losses, list) else []
    # per epoch: the mean of its batch losses (the batches train_step returned, in order)
    epochs = settings.get("epochs")
    epochs = int(epochs) if isinstance(epochs, (int, float)) and 1 <= epochs <= 10_000 else 1
    per = max(1, len(losses) // epochs)
    losses = [float(np.mean(losses[i:i + per])) for i in range(0, len(losses), per)]
    finite = all(np.all(np.isfinite(a)) for pair in layers for a in pair)
    with np.errstate(all="ignore"):
        acc = float(np.mean(np.argmax(mlp_forward(layers, X_eval, act), axis=-1) == np.asarray(y_eval))) if finite else 0.0
    details = {"accuracy": acc, "target": target, "epoch_losses": [v if math.isfinite(v) else repr(v) for v in losses[:50]]}
    if acc >= target:
        return CaseResult(True, details=details)
    what = (f"accuracy {acc:.3f} on {len(y_eval)} digits the grader kept to itself (never in your notebook), "
            f"needs {target:.3f}")
    for l, (W, _) in enumerate(layers[:-1], start=1):
        if _mlp_symmetric(W):
            return _fail("init_symmetric", where, f"{what}; after training W{l} still has identical columns "
                         "(identical hidden units).", details)
    first = losses[0] if losses else math.nan
    rose = len(losses) >= 2 and math.isfinite(first) and any(not v <= first for v in losses[1:])
    if rose:
        curve = f"{first:.3g} to {losses[-1]:.3g}" if math.isfinite(losses[-1]) else f"{first:.3g} to NaN/inf"
        return _fail("update_sign", where, f"{what}; the training loss rose (from {curve}). If train_step passes "
                     "its own test, the learning rate final_settings['eta'] is too large instead.", details)
    if not finite:
        return _fail("diverged", where, f"{what}; after training some weights are NaN or inf.", details)
    if len(losses) >= 2 and not losses[-1] < losses[0]:
        return _fail("not_learning", where, f"{what}; the training loss did not fall ({losses[0]:.3g} to "
                     f"{losses[-1]:.3g}).", details)
    return _fail("too_weak", where, f"{what}" + (f"; the training loss fell from {losses[0]:.3g} to "
                 f"{losses[-1]:.3g}." if len(losses) >= 2 else "."), details)


# -- charged once: a learning case charges only the accuracy test's own errors ---------------

def _undone(record: Record) -> str:
    """The function a learning record says is left undone (a stub that raises
    NotImplementedError, or a name the notebook does not define), else ""."""
    err = record.get("error") if isinstance(record, dict) else None
    if isinstance(err, dict) and err.get("type") in ("NotImplementedError", "missing"):
        return str(record.get("error_at") or "a function")[:80]
    return ""


# failures that are the accuracy test's own (its final_settings) or a malformed record: never excused
_OWN = ("bad_settings", "protocol_error")


def charge_own_errors(specs: list, records: list, cases: list, target: float,
                      reference_accuracy: Callable[[MlpSpec, tuple], float | None]) -> list:
    """A learning case that failed is excused (passes, with a note) when the failure is
    another test's bug: the notebook's ``predict`` case passed (the final network is the
    student's and predict follows it), and correct functions learn the same task with the
    student's settings (``reference_accuracy(spec, settings)`` is at least ``target``; the
    CNN's settings are the grader's, on which the reference is verified for every task).
    Then the functions under the learning case (build_mlp, train_step, train, or the CNN's
    components) are wrong, and their own tests charge it; a lazy or off-task notebook fails
    its predict case and is never excused. The CNN's learning case holds nothing of the
    student's own, so without a passing predict case it fails too."""
    learning = [i for i, s in enumerate(specs) if s.get("learning") or s.get("cnn_learning")]
    others = [c for i, c in enumerate(cases) if i not in learning]
    if not learning or not others:
        return cases
    out = list(cases)
    undone = next((_undone(records[i]) for i in learning if _undone(records[i])), "")
    if undone:
        # a function under the learning case is left as released (or missing): nothing is
        # excused, and predict counts only on the notebook's own network
        for i, c in enumerate(cases):
            if i not in learning and c.passed and c.details.get("harness_network"):
                out[i] = _fail("not_implemented", "predict(X) of your final network",
                               f"your final network cannot run (NotImplementedError or a missing name in {undone}: "
                               "a function is left undone), so predict cannot be checked on it.")
        return out
    if not all(c.passed for c in others):
        # the CNN's settings, loop and network are the grader's: its learning case has nothing
        # of the student's but the components (charged on their own tests), so it counts only
        # with a predict that follows the network
        failed = next(c for c in others if not c.passed)
        for i in learning:
            if specs[i].get("cnn_learning") and cases[i].passed:
                out[i] = CaseResult(False, f"{failed.message} The retrained network learned, but that half counts "
                                    "only with a predict that follows the final network.", failed.diagnosis,
                                    dict(cases[i].details))
        return out
    for i in learning:
        c, rec, spec = cases[i], records[i], specs[i]
        if c.passed or c.diagnosis in _OWN or not isinstance(rec, dict) or rec.get("error_at") == "final_settings":
            continue
        if spec.get("learning"):
            try:
                settings = mlp_settings(rec.get("settings"), len(spec["X"]))
            except Exception:  # noqa: BLE001 - unreadable settings are the test's own error
                continue
            acc = reference_accuracy(spec, settings)
            if acc is None or acc < target:
                continue  # the settings themselves do not learn: the test's own error
            fix = (f"correct build_mlp, train_step and train reach {acc:.3f} with your final_settings, so the "
                   "fault is in those functions and is charged on their own tests only")
        else:
            fix = ("the given network and training loop learn this task with correct components, so the fault is "
                   "in your components and is charged on their own tests only")
        out[i] = CaseResult(True, f"{fix}; your trained network failed: {c.message}",
                            details=dict(c.details, charged_elsewhere=c.diagnosis))
    return out


register(Kind("mlp_accuracy", probe=_probe_mlp, judge=judge_mlp_accuracy))
