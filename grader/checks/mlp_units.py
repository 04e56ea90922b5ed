"""Check kinds ``mlp_build`` and ``mlp_predict``: ``build_mlp`` (shapes, dtype, a seeded,
non-symmetric He initialisation, the graph's logits and loss with weights the grader sets)
and ``MLP.predict`` / ``MLP.accuracy`` (in a graph of the given components, so a wrong
``build_mlp`` is not charged again), plus the notebook's ``predict`` against its final EDF
network with known weights set into it.
"""
import math

import numpy as np

from .base import CaseResult, Kind, Result, _arr, _fail, _get, _graph_lists, _need, register
from .mlp_final import final_case, judge_final_follows
from .mlp_net import (MLP_MAX_LAYERS, _MlpModel, _MlpStage, _mlp_call, _mlp_close, _mlp_error, _mlp_guard,
                      _mlp_kind_specs, _mlp_net, _mlp_numeric_layers, _mlp_pairs, _mlp_set, _mlp_shapes,
                      _mlp_symmetric, _mlp_values, _mlp_where, check_mlp, mlp_exact, mlp_forward,
                      mlp_numeric_case, mlp_weights)
from .types import MlpRecord, MlpSpec, Namespace, Opaque

@_mlp_guard
def _probe_mlp_build(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    build = _need(ns, "build_mlp")
    sizes, act, seed = tuple(int(s) for s in spec["sizes"]), spec["activation"], int(spec["seed"])
    with _graph_lists(ns):
        model = _mlp_call(rec, "build_mlp", build, sizes, act, seed=seed, dtype=np.float64)
        rec["init"] = _mlp_values(model)
        rec["init_again"] = _mlp_values(_mlp_call(rec, "build_mlp", build, sizes, act, seed=seed, dtype=np.float64))
        rec["init_other"] = _mlp_values(_mlp_call(rec, "build_mlp", build, sizes, act, seed=seed + 1, dtype=np.float64))
        if spec.get("float32"):
            m32 = _mlp_call(rec, "build_mlp", build, sizes, act, seed=seed, dtype=np.float32)
            rec["dtypes32"] = [str(np.asarray(p.value).dtype) for pair in _mlp_pairs(m32) for p in pair]
        model = _mlp_call(rec, "build_mlp", build, sizes, act, seed=seed, dtype=np.float64)
        rec["dtypes"] = [str(np.asarray(p.value).dtype) for pair in _mlp_pairs(model) for p in pair]
        _mlp_set(_mlp_pairs(model), spec["layers"])
        rec["stage"] = "forward"
        model.x.set(np.array(spec["X"]))
        model.labels.set(np.array(spec["labels"]))
        _need(ns, "Forward")()
        rec["logits"], rec["loss"] = _arr(model.logits.value), _arr(model.loss.value)


@_mlp_guard
def _probe_mlp_predict(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    if spec.get("case") == "final":
        return _probe_final_predict(ns, spec, rec)
    MLP = _need(ns, "MLP")
    X, y = np.array(spec["X"]), np.array(spec["y"])
    with _graph_lists(ns):
        _need(ns, "clear_compgraph")()
        # the student's MLP record around a graph of the given components: predict is judged
        # on its own, whatever build_mlp does
        g = _MlpModel(ns, spec["sizes"], spec["activation"], spec["layers"])
        model = _mlp_call(rec, "MLP", MLP, x=g.x, labels=g.labels, logits=g.logits, loss=g.loss, layers=g.layers)
        pairs = g.layers
        rec["pred"] = _arr(_mlp_call(rec, "predict", model.predict, X))
        rec["acc"] = _arr(_mlp_call(rec, "accuracy", model.accuracy, X, y))
        # new weights, fewer rows: a prediction must come from a fresh Forward with these
        _mlp_set(pairs, spec["layers2"])
        rec["pred2"] = _arr(_mlp_call(rec, "predict", model.predict, X[:7]))


def _probe_final_predict(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    """The notebook's ``predict`` with known weights set into the final graph's parameters
    (``params``, in creation order W1, b1, W2, b2, ...), twice; with the logits node's value
    after each call. The old weights are restored. When the graph is not a network of
    ``final_settings['sizes']``, or ``predict`` raises on it (``build_mlp``, which has its own
    test, may be what is wrong: ``final_model`` is then not its network), the harness builds
    that network from the given components and binds it as ``final_model`` while ``predict``
    runs, so that this case judges ``predict`` alone."""
    settings = _need(ns, "final_settings")
    sizes = [int(s) for s in settings["sizes"]]
    if not 2 <= len(sizes) <= MLP_MAX_LAYERS + 1 or max(sizes) > 4096 or min(sizes) < 1:
        raise _MlpStage(f"final_settings['sizes'] = {sizes} is not a list of layer widths")
    want = [np.shape(a) for pair in mlp_weights(sizes, 0) for a in pair]
    plist = list(_need(ns, "params"))
    losses = [c for c in list(_need(ns, "components")) if type(c).__name__ == "SoftmaxCrossEntropy"]
    ordered = []
    for pair in zip(plist[0::2], plist[1::2]):  # W then b per layer; either order within a layer
        ordered += sorted(pair, key=lambda p: -np.ndim(p.value))
    found = len(plist) == len(want) and [np.shape(p.value) for p in ordered] == want and losses
    forward = _need(ns, "Forward")

    def harness_network() -> Opaque:
        net = _MlpModel(ns, sizes, str(settings["activation"]), mlp_weights(sizes, 0))
        net.predict = lambda X: _predict_by_forward(forward, net, X)
        return net

    final_case(ns, rec, "MLP",
               (lambda: _final_predictions(ns, spec, rec, sizes, ordered, losses[-1].logits)) if found else None,
               f"the EDF graph is not a network of sizes {sizes} (final_settings['sizes']): build the final network "
               "last, with build_mlp(final_settings['sizes'], ...)", harness_network,
               lambda alt, net: _final_predictions(ns, spec, alt, sizes, [p for pair in net.layers for p in pair],
                                                   net.logits))


def _predict_by_forward(forward: Opaque, model: Opaque, X: np.ndarray) -> np.ndarray:
    """A correct ``predict`` of a model with x, labels and logits nodes."""
    model.x.set(X)
    model.labels.set(np.zeros(len(X), dtype=np.int64))
    forward()
    return np.argmax(model.logits.value, axis=-1)


def _final_predictions(ns: Namespace, spec: MlpSpec, rec: MlpRecord, sizes: list[int], ordered: list,
                       logits: Opaque) -> None:
    saved = [p.value for p in ordered]
    # MLP.predict has its own test: while predict(X) runs, the MLP class's predict is a correct
    # stand-in, so this case judges the notebook's predict alone
    cls = _get(ns, "MLP")
    own = cls.__dict__.get("predict") if isinstance(cls, type) else None
    forward = _need(ns, "Forward")
    if own is not None:
        setattr(cls, "predict", lambda self, X: _predict_by_forward(forward, self, X))
    rec["pred"], rec["logits"] = [], []
    try:
        for k in range(2):
            for p, v in zip(ordered, [a for pair in mlp_weights(sizes, int(spec["seed"]) + k) for a in pair]):
                p.value = np.array(v, dtype=np.float64)
            rec["pred"].append(_arr(_mlp_call(rec, "predict", _need(ns, "predict"), np.array(spec["X"]))))
            rec["logits"].append(_arr(logits.value))
    finally:
        for p, v in zip(ordered, saved):
            p.value = v
        if own is not None:
            setattr(cls, "predict", own)


def judge_mlp_build(spec: MlpSpec, record: MlpRecord, expected: dict) -> CaseResult:
    where = _mlp_where(spec)
    if "error" in record:
        return _mlp_error(record, where)
    sizes = [int(s) for s in spec["sizes"]]
    init, why = _mlp_numeric_layers(record.get("init"), _mlp_shapes(sizes))
    if why:
        return _fail("init_scale", where, f"model.layers: {why}.")
    Ws = [W for W, _ in init]
    if all(not np.any(W) for W in Ws):
        return _fail("init_zero", where, "every weight starts at 0: all units of a layer compute the same "
                     "thing, get the same gradient and stay identical.")
    for l, W in enumerate(Ws, start=1):
        if _mlp_symmetric(W) or (W.size > 1 and np.all(W == W.flat[0])):
            return _fail("init_symmetric", where, f"W{l} starts with identical columns (identical units).")
    dtypes = record.get("dtypes")
    if not isinstance(dtypes, list) or any(d != "float64" for d in dtypes):
        return _fail("wrong_dtype", where, f"with dtype=np.float64 the weights have dtypes {dtypes}.")
    if spec.get("float32") and (not isinstance(record.get("dtypes32"), list)
                                or any(d != "float32" for d in record["dtypes32"])):
        return _fail("wrong_dtype", where, f"with dtype=np.float32 the weights have dtypes {record.get('dtypes32')}.")
    again, _ = _mlp_numeric_layers(record.get("init_again"), _mlp_shapes(sizes))
    other, _ = _mlp_numeric_layers(record.get("init_other"), _mlp_shapes(sizes))
    flat = lambda ls: np.concatenate([a.ravel() for pair in ls for a in pair])  # noqa: E731
    if again is None or not np.array_equal(flat(again), flat(init)):
        return _fail("init_not_seeded", where, "the same seed gave different initial weights.")
    if other is None or np.array_equal(flat(other), flat(init)):
        return _fail("init_not_seeded", where, "seed and seed + 1 gave the same initial weights.")
    for l, (W, b) in enumerate(init, start=1):
        want = math.sqrt(2.0 / W.shape[0])
        if np.any(b != 0):
            return _fail("init_scale", where, f"b{l} does not start at zero.")
        if W.size >= 100:  # sample mean and std within 6 standard errors of He's (false alarm < 1e-8)
            std, mean, n = float(np.std(W)), float(np.mean(W)), W.size
            if abs(std / want - 1) > 6 / math.sqrt(2 * n) or abs(mean) > 6 * want / math.sqrt(n):
                return _fail("init_scale", where, f"W{l} starts with mean {mean:.3g} and standard deviation "
                             f"{std:.3g}; He initialisation has mean 0 and sqrt(2 / {W.shape[0]}) = {want:.3g}.")
    logits, want = record.get("logits"), np.asarray(expected["logits"], dtype=float)
    if not isinstance(logits, np.ndarray) or logits.shape != want.shape:
        shape = getattr(logits, "shape", None)
        return _fail("wrong_graph", where, f"with weights the grader set, model.logits.value has shape {shape}, "
                     f"expected {want.shape}.")
    if not _mlp_close(logits, want):
        act, other_act = spec["activation"], ("tanh" if spec["activation"] == "relu" else "relu")
        layers = spec["layers"]
        if _mlp_close(logits, mlp_forward(layers, spec["X"], act, last=act)):
            return _fail("activation_on_logits", where, f"the logits are {act}(last layer's output).")
        if len(layers) > 1 and _mlp_close(logits, mlp_forward(layers, spec["X"], other_act)):
            return _fail("wrong_activation", where, f"the hidden layers use {other_act}, not {act}.")
        if len(layers) > 1 and _mlp_close(logits, mlp_forward(layers, spec["X"], None)):
            return _fail("wrong_activation", where, "there is no nonlinearity between the layers.")
        return _fail("wrong_graph", where, "with weights the grader set, the logits differ from "
                     "the network's forward pass.", {"max_abs_err": float(np.nanmax(np.abs(logits - want)))})
    if not _mlp_close(record.get("loss"), expected["loss"]):
        return _fail("wrong_graph", where, "the loss node is not the mean softmax cross-entropy of the logits "
                     "against the labels.")
    return CaseResult(True)


def judge_mlp_predict(spec: MlpSpec, record: MlpRecord, expected: dict) -> CaseResult:
    if spec.get("case") == "final":
        return judge_final_follows(spec, record)
    where = f"MLP.predict of {_mlp_net(spec)}"
    if "error" in record:
        return _mlp_error(record, where)
    for key in ("pred", "pred2"):
        got, want = record.get(key), np.asarray(expected[key])
        if not isinstance(got, np.ndarray) or got.shape != want.shape:
            return _fail("not_from_model", where, f"predict returned shape {getattr(got, 'shape', None)}, "
                         f"expected {want.shape} (one class per row).")
        wrong = int(np.sum(got != want))
        if wrong:
            when = "" if key == "pred" else " after the grader set new weights"
            return _fail("not_from_model", where, f"{wrong} of {want.size} predictions{when} differ from the "
                         "argmax of the logits of the network with the weights the grader set.")
    acc, want_acc = record.get("acc"), float(np.mean(record["pred"] == np.asarray(spec["y"])))
    if not isinstance(acc, np.ndarray) or acc.shape != () or not abs(float(acc) - want_acc) <= 1e-12:
        return _fail("not_from_model", f"MLP.accuracy of {_mlp_net(spec)}",
                     f"returned {acc if acc is None else np.asarray(acc).tolist()}, the fraction of predictions "
                     f"equal to y is {want_acc:.6g}.")
    return CaseResult(True)


def check_mlp_build(ns: Namespace, seed: int = 0, test_id: str | None = None) -> Result:
    """build_mlp: shapes, dtype, a seeded He initialisation, the graph's logits and loss."""
    return check_mlp(ns, "mlp_build", seed, test_id)


def check_mlp_predict(ns: Namespace, seed: int = 0, test_id: str | None = None) -> Result:
    """MLP.predict / MLP.accuracy with weights the checks set, and the final predict(X)."""
    return check_mlp(ns, "mlp_predict", seed, test_id)


register(Kind("mlp_build", probe=_probe_mlp_build, judge=judge_mlp_build, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
register(Kind("mlp_predict", probe=_probe_mlp_predict, judge=judge_mlp_predict, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
