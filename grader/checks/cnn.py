"""conv_edf's cases of the ``mlp_accuracy`` kind: the given CNN retrained with the student's
components by the given ``train_cnn_epoch`` on a re-drawn image task (``_probe_cnn_learning``
in the child, ``judge_cnn_learning`` in the parent on digits the child never had), and the
notebook's ``predict`` following the final CNN (``_probe_cnn_final``; on a harness network
when the student's cannot run it). ``mlp.py`` dispatches to them.
"""
import math
from collections.abc import Callable

import numpy as np

from .base import DIAGNOSES, CaseResult, _arr, _fail, _get, _graph_lists, _need
from .mlp_final import final_case
from .mlp_net import _mlp_call, _mlp_error, _mlp_guard, _mlp_setname
from .types import MlpRecord, MlpSpec, Namespace, Opaque


# -- conv_edf: the given CNN trained by the student's train_cnn_epoch -----------------------

CNN_LIMITS = {"filters": 64}
DIAGNOSES.update({
    "outside_sgd": ("the network was not trained by SGD", "train_cnn_epoch must update the weights with SGD(eta) after Backward(model.loss), once per batch; nothing else may change them."),
    "epoch_not_learning": ("training does not learn", "Each batch: set model.x and model.labels, Forward(), Backward(model.loss), SGD(eta); return the mean of the batch losses."),
})


@_mlp_guard
def _probe_cnn_learning(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    """A fresh ``build_cnn(filters, seed)`` (the given network) trained by the student's
    ``train_cnn_epoch`` for the grader's epochs on the grader's task; the weights must change
    by ``SGD(eta)`` alone. Returns the trained parameters and the epoch losses."""
    build, epoch_fn, sgd = _need(ns, "build_cnn"), _need(ns, "train_cnn_epoch"), _need(ns, "SGD")
    X, y, seed = np.array(spec["X"]), np.array(spec["y"]), int(spec["seed"])
    filters, eta, epochs, batch = int(spec["filters"]), float(spec["eta"]), int(spec["epochs"]), int(spec["batch_size"])
    chain = {"calls": 0, "broken": 0, "other_eta": 0, "negated": 0}

    def recording_sgd(eta_b: float, *args: object, **kwargs: object) -> Opaque:
        # the weights must evolve by SGD alone, from build_cnn's to the last step's
        chain["broken"] += any(not np.array_equal(p.value, v, equal_nan=True) for p, v in zip(plist, chain["last"]))
        chain["other_eta"] += eta_b != eta
        chain["negated"] += eta_b == -eta
        out = sgd(eta_b, *args, **kwargs)
        chain["calls"] += 1
        chain["last"] = [np.array(p.value) for p in plist]
        return out

    losses = []
    with _graph_lists(ns):
        model = _mlp_call(rec, "build_cnn", build, filters, seed=seed)
        plist = list(model.params)
        chain["last"] = [np.array(p.value) for p in plist]
        rng = np.random.default_rng(seed + 1)
        _mlp_setname(ns, "SGD", recording_sgd)
        try:
            for _ in range(epochs):
                losses.append(_arr(_mlp_call(rec, "train_cnn_epoch", epoch_fn, model, X, y, eta, batch, rng)))
        finally:
            _mlp_setname(ns, "SGD", sgd)
        chain["broken"] += any(not np.array_equal(p.value, v, equal_nan=True) for p, v in zip(plist, chain["last"]))
        graph = _get(ns, "params") or []
        rec["in_graph"] = all(any(p is q for q in graph) for p in plist)
        rec["params"] = [_arr(p.value) for p in plist]
    rec["chain"] = {k: v for k, v in chain.items() if k != "last"}
    rec["losses"] = losses


def cnn_shapes(filters: int) -> list[tuple[int, ...]]:
    """The parameter shapes of the given ``build_cnn(filters)``: K, c, W, b."""
    return [(filters, 1, 3, 3), (filters,), (filters * 16, 10), (10,)]


def judge_cnn_learning(spec: MlpSpec, record: MlpRecord, X_eval: np.ndarray, y_eval: np.ndarray, target: float,
                       logits: Callable[[list[np.ndarray], np.ndarray], np.ndarray]) -> CaseResult:
    """Accuracy of the parameters the child trained, measured here by ``logits(params, X)``
    (the trusted forward pass) on images the child never had."""
    where = (f"build_cnn({spec['filters']}) with your components, trained by train_cnn_epoch ({spec['epochs']} epochs, eta = "
             f"{spec['eta']}, batches of {spec['batch_size']}) from the grader's seed")
    if "error" in record:
        return _mlp_error(record, where)
    params = record.get("params")
    shapes = cnn_shapes(int(spec["filters"]))
    if not isinstance(params, list) or len(params) != 4 or any(
            not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf" or a.shape != s for a, s in zip(params, shapes)):
        return _fail("wrong_graph", where, "model.params after training are not the network's four parameter arrays.")
    if record.get("in_graph") is not True:
        return _fail("not_from_model", where, "model.params are not the parameters of the EDF graph.")
    chain = record.get("chain") if isinstance(record.get("chain"), dict) else {}
    if not chain.get("calls"):
        return _fail("outside_sgd", where, "train_cnn_epoch never called SGD(eta).")
    if chain.get("negated") and chain.get("negated") == chain.get("other_eta"):
        return _fail("update_sign", where, "train_cnn_epoch called SGD(-eta): every step climbs the loss.")
    if chain.get("broken") or chain.get("other_eta"):
        return _fail("outside_sgd", where, "the weights changed outside SGD(eta) while training, or SGD got "
                     "another learning rate than the eta given to train_cnn_epoch.")
    losses = record.get("losses")
    losses = [float(v) for v in losses if isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "biuf"] \
        if isinstance(losses, list) else []
    params = [np.asarray(a, dtype=float) for a in params]
    finite = all(np.all(np.isfinite(a)) for a in params)
    with np.errstate(all="ignore"):
        acc = float(np.mean(np.argmax(logits(params, X_eval), axis=-1) == np.asarray(y_eval))) if finite else 0.0
    details = {"accuracy": acc, "target": target, "epoch_losses": [v if math.isfinite(v) else repr(v) for v in losses[:50]]}
    if acc >= target:
        return CaseResult(True, details=details)
    what = (f"accuracy {acc:.3f} on {len(y_eval)} digits the grader kept to itself (never in your notebook), "
            f"needs {target:.3f}")
    if not finite:
        return _fail("diverged", where, f"{what}; after training some weights are NaN or inf.", details)
    if len(losses) >= 2 and math.isfinite(losses[0]) and not losses[-1] < losses[0]:
        return _fail("epoch_not_learning", where, f"{what}; the epoch losses train_cnn_epoch returned did not fall "
                     f"({losses[0]:.3g} to {losses[-1]:.3g}): check the update (SGD(eta) after Backward(model.loss)) "
                     "and, if your components pass their tests, how the batches are set.", details)
    return _fail("too_weak", where, f"{what}.", details)


@_mlp_guard
def _probe_cnn_final(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    """The notebook's ``predict`` with known weights set into the final graph's parameters
    (``params``: K, c, W, b of the given CNN), twice; with the logits node's value after each
    call. The old weights are restored. When there is no final CNN in the graph, or running
    it raises (a component, which has its own test, may be what is wrong), ``predict`` is
    judged on a network the harness builds instead, bound as ``final_model``: this case
    judges ``predict`` alone."""
    plist = list(_need(ns, "params"))
    losses = [c for c in list(_need(ns, "components")) if type(c).__name__ == "SoftmaxCrossEntropy"]
    shapes = [np.shape(p.value) for p in plist]
    f = shapes[0][0] if shapes and len(shapes[0]) == 4 else 0
    found = losses and 1 <= f <= CNN_LIMITS["filters"] and shapes == cnn_shapes(f)
    final_case(ns, rec, "CNN",
               (lambda: _cnn_final_predictions(ns, spec, rec, plist, losses[-1].logits)) if found else None,
               "the EDF graph is not the final CNN: build the final network last, with build_cnn",
               lambda: _cnn_stand_in(ns, int(spec["seed"])),
               lambda alt, net: _cnn_final_predictions(ns, spec, alt, net.params, net.logits))


def _cnn_final_predictions(ns: Namespace, spec: MlpSpec, rec: MlpRecord, plist: list, logits: Opaque) -> None:
    saved = [p.value for p in plist]
    rec["pred"], rec["logits"] = [], []
    try:
        for k in range(2):
            rng = np.random.default_rng([int(spec["seed"]), k])
            for p in plist:
                shape = np.shape(p.value)
                fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
                p.value = rng.normal(0.0, 1.5 / np.sqrt(fan_in) if len(shape) > 1 else 0.3, shape)
            rec["pred"].append(_arr(_mlp_call(rec, "predict", _need(ns, "predict"), np.array(spec["X"]))))
            rec["logits"].append(_arr(logits.value))
    finally:
        for p, v in zip(plist, saved):
            p.value = v


def _cnn_stand_in(ns: Namespace, seed: int) -> Opaque:
    """A network with the final CNN's interface (the given ``CNN``: x, labels, logits, loss,
    params) built by the harness from the given components on a fixed random projection of
    the pixels (no graded component in it): ``predict`` can follow it whatever the student's
    Conv2D, MaxPool2D and Flatten do."""
    CompNode, Input, Parameter = _need(ns, "CompNode"), _need(ns, "Input"), _need(ns, "Parameter")
    P = np.random.default_rng([seed, 11]).normal(0.0, 0.5, (64, 32))

    class Pixels(CompNode):  # the harness's own node: rows of pixels times a fixed matrix
        def __init__(self, x: Opaque) -> None:
            super().__init__()
            self.x = x

        def forward(self) -> None:
            self.value = np.reshape(self.x.value, (len(self.x.value), -1)) @ P

        def backward(self) -> None:
            pass

    x, labels = Input(), Input()
    W, b = Parameter(np.zeros((32, 10))), Parameter(np.zeros(10))
    logits = _need(ns, "Add")(_need(ns, "VDot")(Pixels(x), W), b)
    loss = _need(ns, "SoftmaxCrossEntropy")(logits, labels)
    return _need(ns, "CNN")(x=x, labels=labels, logits=logits, loss=loss, params=[W, b])
