"""Check kinds of ``mlp_training``: each function the student writes, on cases the grader
chooses, and learning by the student's own code.

- ``mlp_build``: ``build_mlp`` gives layers of the right shapes and dtype, a seeded,
  non-symmetric He initialisation, and a graph whose logits and loss are the network's
  (the grader sets known weights into it and compares with the forward pass in NumPy);
- ``mlp_predict``: ``MLP.predict`` / ``MLP.accuracy`` follow the weights the grader sets
  (in a graph of the given components, so a wrong ``build_mlp`` is not charged again), and
  the notebook's ``predict`` runs its final EDF network with the weights set into it;
- ``mlp_train_step``: one step from weights and a batch the grader chooses;
- ``mlp_train``: which rows ``train`` hands to ``train_step``, epoch by epoch, against the
  order ``np.random.default_rng(seed)`` fixes;
- ``mlp_accuracy``: visible, ``predict(X_test)`` against ``y_test`` in the notebook; hidden,
  its specs are ``mlp_learning``: ``build_mlp`` + ``train`` with ``final_settings`` from the
  grader's seed on training data it sends; the child returns the trained weights (and
  whether only ``train_step`` changed them) and the parent measures them on digits the child
  never had (``judge_mlp_learning``, called by ``hidden`` with the held-back data).

Expected records: ``mlp_expected(spec)`` computes them from the notebook's formulas in NumPy
(public, visible tests); ``hidden`` takes them from the reference's own probe record.
"""
import math

import numpy as np

from .base import (DIAGNOSES, CaseResult, Kind, Result, _arr, _err, _fail, _get, _graph_lists, _need, _quiet,
                   _seeds, combine, probe, register)
from .compare import _error_case, _valid

def _probe_mlp(ns, spec: dict) -> dict:
    predict = _need(ns, spec.get("target") or "predict")
    try:
        return {"pred": _arr(predict(np.array(spec["X"])))}
    except (Exception, SystemExit) as e:
        return {"error": _err(e), "error_at": "call"}


def judge_mlp_accuracy(spec, record, labels, target) -> CaseResult:
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


def check_mlp_accuracy(ns, X, y, target=0.95, predict="predict", test_id=None) -> Result:
    spec = {"check": "mlp_accuracy", "target": predict, "X": np.asarray(X)}
    with _quiet():
        return combine(test_id or "accuracy", [judge_mlp_accuracy(spec, probe(ns, spec), y, target)])


MLP_RTOL, MLP_ATOL = 1e-6, 1e-9
MLP_MAX_LAYERS = 8
MLP_LIMITS = {"inputs": 64, "classes": 10, "hidden_layers": 4, "width": 256, "epochs": 50}

DIAGNOSES.update({
    "init_zero": ("the weights start at zero", "Draw each W at random, rng.normal(0.0, np.sqrt(2 / d_in), (d_in, d_out)); only the biases start at zero."),
    "init_symmetric": ("symmetric initialisation: identical hidden units", "Units that start equal get equal gradients and stay equal: draw every weight independently at random."),
    "init_scale": ("initial weights not as specified", "W_l ~ Normal(0, sqrt(2 / d_{l-1})) of shape (d_{l-1}, d_l); b_l = zeros (d_l,)."),
    "init_not_seeded": ("the seed does not fix the network", "Make one generator rng = np.random.default_rng(seed) in build_mlp and draw every weight from it."),
    "wrong_dtype": ("weights of the wrong dtype", "Create every weight and bias with .astype(dtype) (float64 by default)."),
    "activation_on_logits": ("a nonlinearity on the logits", "The last layer's Add gives the logits: apply the activation after every layer except the last."),
    "wrong_activation": ("the wrong nonlinearity", "Use ACTIVATIONS[activation] between the layers."),
    "wrong_graph": ("the graph computes something else", "Per layer h = Add(VDot(h, W), b), the activation between layers, loss = SoftmaxCrossEntropy(logits, labels)."),
    "not_from_model": ("predictions do not follow the network's weights", "predict must set X into model.x, run Forward() and take the argmax of model.logits.value."),
    "update_sign": ("the update climbs the loss: wrong sign", "SGD moves against the gradient: theta <- theta - eta * theta_bar (SGD(eta) after Backward(model.loss))."),
    "no_update": ("the parameters did not change", "train_step must run Forward(), Backward(model.loss) and SGD(eta) on the batch."),
    "wrong_update": ("the update is wrong", "One step is Forward(), Backward(model.loss), SGD(eta) on the batch set into model.x and model.labels."),
    "no_shuffle": ("no shuffling: the rows are visited in their stored order", "Each epoch visits the rows in the order rng.permutation(len(X))."),
    "order_repeats": ("every epoch visits the rows in the same order", "Make the generator once, before the first epoch, and draw a new permutation from it each epoch."),
    "wrong_order": ("the rows are not visited in the order the seed fixes", "Make one rng = np.random.default_rng(seed) before the first epoch; each epoch order = rng.permutation(len(X))."),
    "wrong_batches": ("the batches are cut differently", "Cut each epoch's order with np.array_split(order, max(1, len(X) // batch_size)) and call train_step on each part in turn."),
    "wrong_history": ("the history is wrong", "Append {'epoch': e, 'loss': mean of the epoch's batch losses} after each epoch, e counting from 1."),
    "outside_train_step": ("the network was not trained by train_step", "train must call train_step(model, X[rows], y[rows], eta) on every batch, and nothing else may change the weights."),
    "not_learning": ("training does not learn", "The training loss should fall: check train_step's update and that train passes eta and the batches."),
    "too_weak": ("the trained network is not accurate enough", "Train longer or with another learning rate or width (final_settings); your experiments show what works."),
    "diverged": ("training diverged (NaN or inf weights)", "The learning rate is too large for this network: lower final_settings['eta']."),
    "bad_settings": ("final_settings is not usable", "Set final_settings as the notebook says: sizes, activation, eta, epochs, batch_size, within the stated limits."),
})


# ----------------------------------------------------------------------------------
# The network in NumPy: the notebook's formulas
# ----------------------------------------------------------------------------------

def _mlp_phi(h, activation):
    return np.maximum(h, 0.0) if activation == "relu" else np.tanh(h)


def mlp_forward(layers, X, activation, last=None):
    """Logits of the MLP with weights ``layers`` = [(W, b), ...]; ``last`` (an activation name
    or None) is applied to the logits too, to recognise that mistake."""
    h = np.asarray(X, dtype=float)
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1 and activation:
            h = _mlp_phi(h, activation)
    return _mlp_phi(h, last) if last else h


def mlp_loss(layers, X, y, activation) -> float:
    z = mlp_forward(layers, X, activation)
    return float(np.mean(np.logaddexp.reduce(z, axis=-1) - z[np.arange(len(z)), np.asarray(y, dtype=int)]))


def mlp_weights(sizes, seed):
    """Weights the grader sets into a network: not the He initialisation, so that a network
    that ignores them is seen; biases non-zero, so that a missing bias is seen."""
    rng = np.random.default_rng(seed)
    return [[rng.normal(0.0, 1.5 / np.sqrt(a), (a, b)), rng.normal(0.0, 0.3, b)]
            for a, b in zip(sizes[:-1], sizes[1:])]


def _mlp_rng(check, seed):
    return np.random.default_rng([sum(map(ord, check)), int(seed)])


# ----------------------------------------------------------------------------------
# Specs (the same builder for visible and hidden tests; the seed differs)
# ----------------------------------------------------------------------------------

MLP_NETS = (((64, 32, 10), "relu"), ((64, 16, 16, 10), "tanh"), ((64, 10), "relu"))
MLP_SMALL_NETS = (((6, 5, 4), "relu"), ((6, 5, 5, 4), "tanh"))


def mlp_specs(check, seed=0) -> list:
    rng = _mlp_rng(check, seed)
    specs = []
    if check == "mlp_build":
        for k, (sizes, act) in enumerate(MLP_NETS):
            specs.append({"check": check, "sizes": list(sizes), "activation": act,
                          "seed": int(rng.integers(1 << 30)), "layers": mlp_weights(sizes, rng.integers(1 << 30)),
                          "X": rng.uniform(0.0, 1.0, (12, sizes[0])), "labels": rng.integers(0, sizes[-1], 12),
                          "float32": k == 0})
    elif check == "mlp_predict":
        for sizes, act in MLP_NETS[:2]:
            specs.append({"check": check, "case": "model", "sizes": list(sizes), "activation": act,
                          "layers": mlp_weights(sizes, rng.integers(1 << 30)),
                          "layers2": mlp_weights(sizes, rng.integers(1 << 30)),
                          "X": rng.uniform(0.0, 1.0, (40, sizes[0])), "y": rng.integers(0, sizes[-1], 40)})
        specs.append({"check": check, "case": "final", "seed": int(rng.integers(1 << 30)),
                      "X": rng.uniform(0.0, 1.0, (40, MLP_LIMITS["inputs"]))})
    elif check == "mlp_train_step":
        for sizes, act in MLP_SMALL_NETS:
            specs.append({"check": check, "sizes": list(sizes), "activation": act,
                          "layers": mlp_weights(sizes, rng.integers(1 << 30)),
                          "X": rng.normal(0.0, 1.0, (8, sizes[0])), "y": rng.integers(0, sizes[-1], 8),
                          "eta": float(rng.uniform(0.2, 0.6))})
    elif check == "mlp_train":
        sizes, act = MLP_SMALL_NETS[0]
        n = 23  # not a multiple of the batch size: array_split's uneven batches
        specs.append({"check": check, "sizes": list(sizes), "activation": act,
                      "layers": mlp_weights(sizes, rng.integers(1 << 30)),
                      "X": rng.normal(0.0, 1.0, (n, sizes[0])), "y": rng.integers(0, sizes[-1], n),
                      "eta": float(rng.uniform(0.05, 0.2)), "epochs": 3, "batch_size": 5,
                      "seed": int(rng.integers(1 << 30))})
    else:
        raise ValueError(f"no specs for {check!r}")
    return specs


# ----------------------------------------------------------------------------------
# Probes (run in the child, on the student's namespace)
# ----------------------------------------------------------------------------------

class _MlpStage(Exception):
    """A contract violation found while probing (not an exception of the student's code)."""


def _mlp_pairs(model):
    layers = list(getattr(model, "layers"))
    if not 0 < len(layers) <= MLP_MAX_LAYERS or not all(len(pair) == 2 for pair in layers):
        raise _MlpStage("model.layers must be a list of (W, b) Parameter pairs, first layer first")
    return layers


def _mlp_values(model):
    return [[_arr(W.value), _arr(b.value)] for W, b in _mlp_pairs(model)]


def _mlp_set(pairs, layers):
    if len(pairs) != len(layers):
        raise _MlpStage(f"model.layers has {len(pairs)} (W, b) pairs, expected {len(layers)}")
    for (W, b), (Wv, bv) in zip(pairs, layers):
        W.value, b.value = np.array(Wv, dtype=np.float64), np.array(bv, dtype=np.float64)


def _mlp_call(rec, stage, fn, *args, **kwargs):
    rec["stage"] = stage
    return fn(*args, **kwargs)


def _mlp_guard(fn):
    """Run a probe body; an exception becomes an error record naming the call that raised."""
    def run(ns, spec):
        rec = {}
        try:
            fn(ns, spec, rec)
        except _MlpStage as e:
            return {"error": {"type": "contract", "message": str(e)[:300]}, "error_at": rec.get("stage", "")}
        except (Exception, SystemExit) as e:
            return {"error": _err(e), "error_at": rec.get("stage", "")}
        rec.pop("stage", None)
        return rec
    run.__name__ = fn.__name__
    return run


@_mlp_guard
def _probe_mlp_build(ns, spec, rec):
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
def _probe_mlp_predict(ns, spec, rec):
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


def _probe_final_predict(ns, spec, rec):
    """The notebook's ``predict`` with known weights set into the final graph's parameters
    (``params``, in creation order W1, b1, W2, b2, ...), twice; with the logits node's value
    after each call. The old weights are restored."""
    settings = _need(ns, "final_settings")
    sizes = [int(s) for s in settings["sizes"]]
    if not 2 <= len(sizes) <= MLP_MAX_LAYERS + 1 or max(sizes) > 4096 or min(sizes) < 1:
        raise _MlpStage(f"final_settings['sizes'] = {sizes} is not a list of layer widths")
    plist = list(_need(ns, "params"))
    losses = [c for c in list(_need(ns, "components")) if type(c).__name__ == "SoftmaxCrossEntropy"]
    want = [np.shape(a) for pair in mlp_weights(sizes, 0) for a in pair]
    ordered = []
    for pair in zip(plist[0::2], plist[1::2]):  # W then b per layer; either order within a layer
        ordered += sorted(pair, key=lambda p: -np.ndim(p.value))
    if len(plist) != len(want) or [np.shape(p.value) for p in ordered] != want or not losses:
        raise _MlpStage(f"the EDF graph is not a network of sizes {sizes} (final_settings['sizes']): build the "
                        "final network last, with build_mlp(final_settings['sizes'], ...)")
    logits = losses[-1].logits  # the given SoftmaxCrossEntropy keeps its logits operand
    saved = [p.value for p in ordered]
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


class _MlpModel:
    """The network of a train_step/train case, built from the given components (so that a
    wrong build_mlp is not charged again here); the same fields as the notebook's MLP."""

    def __init__(self, ns, sizes, activation, layers):
        Input, Parameter = _need(ns, "Input"), _need(ns, "Parameter")
        VDot, Add = _need(ns, "VDot"), _need(ns, "Add")
        phi = _need(ns, "ACTIVATIONS")[activation]
        self.x, self.labels = Input(), Input()
        h, self.layers = self.x, []
        for i, (Wv, bv) in enumerate(layers):
            W, b = Parameter(np.array(Wv, dtype=np.float64)), Parameter(np.array(bv, dtype=np.float64))
            self.layers.append((W, b))
            h = Add(VDot(h, W), b)
            if i < len(layers) - 1:
                h = phi(h)
        self.logits = h
        self.loss = _need(ns, "SoftmaxCrossEntropy")(h, self.labels)

    def predict(self, X):
        raise _MlpStage("train must not predict when no validation data is given")

    def accuracy(self, X, y):
        raise _MlpStage("train must not measure accuracy when no validation data is given")


@_mlp_guard
def _probe_mlp_train_step(ns, spec, rec):
    step = _need(ns, "train_step")
    with _graph_lists(ns):
        _need(ns, "clear_compgraph")()
        model = _MlpModel(ns, spec["sizes"], spec["activation"], spec["layers"])
        loss = _mlp_call(rec, "train_step", step, model, np.array(spec["X"]), np.array(spec["y"]), spec["eta"])
        rec["loss"] = _arr(loss)
        rec["after"] = _mlp_values(model)


def _mlp_setname(ns, name, value):
    if isinstance(ns, dict):
        ns[name] = value
    else:
        setattr(ns, name, value)


@_mlp_guard
def _probe_mlp_train(ns, spec, rec):
    train, step = _need(ns, "train"), _need(ns, "train_step")
    X, y = np.array(spec["X"]), np.array(spec["y"])
    calls = []

    def recording_step(model, Xb, yb, eta):
        loss = step(model, Xb, yb, eta)
        if len(calls) < 1000:
            calls.append((_arr(np.asarray(Xb)[:, 0]), _arr(yb), _arr(eta), model is this, _arr(loss)))
        return loss

    with _graph_lists(ns):
        _need(ns, "clear_compgraph")()
        this = _MlpModel(ns, spec["sizes"], spec["activation"], spec["layers"])
        _mlp_setname(ns, "train_step", recording_step)
        try:
            history = _mlp_call(rec, "train", train, this, X, y, spec["eta"], spec["epochs"],
                                batch_size=spec["batch_size"], seed=spec["seed"])
        finally:
            _mlp_setname(ns, "train_step", step)
    rec["batches"] = [c[0] for c in calls]
    rec["labels"] = [c[1] for c in calls]
    rec["etas"] = [c[2] for c in calls]
    rec["same_model"] = [bool(c[3]) for c in calls]
    rec["losses"] = [c[4] for c in calls]
    rec["history"] = [[_arr(h.get("epoch")), _arr(h.get("loss"))] if isinstance(h, dict) else [None, None]
                      for h in list(history)[:1000]]


def mlp_settings(settings, n_rows):
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


@_mlp_guard
def _probe_mlp_learning(ns, spec, rec):
    build, train = _need(ns, "build_mlp"), _need(ns, "train")
    X, y, seed = np.array(spec["X"]), np.array(spec["y"]), int(spec["seed"])
    rec["stage"] = "final_settings"
    sizes, act, eta, epochs, batch = mlp_settings(_need(ns, "final_settings"), len(X))
    rec["settings"] = {"sizes": list(sizes), "activation": act, "eta": eta, "epochs": epochs, "batch_size": batch}
    step = _need(ns, "train_step")
    chain = {"calls": 0, "broken": 0, "other_eta": 0, "other_model": 0}

    def recording_step(m, Xb, yb, eta_b):
        # the weights must evolve by train_step alone, from build_mlp's to the last step's
        now = [p.value for pair in pairs for p in pair]
        chain["broken"] += any(not np.array_equal(a, b, equal_nan=True) for a, b in zip(now, chain["last"]))
        chain["other_eta"] += eta_b != eta
        chain["other_model"] += m is not model
        loss = step(m, Xb, yb, eta_b)
        chain["calls"] += 1
        chain["last"] = [np.array(p.value) for pair in pairs for p in pair]
        return loss

    with _graph_lists(ns):
        model = _mlp_call(rec, "build_mlp", build, sizes, act, seed=seed, dtype=np.float64)
        pairs = _mlp_pairs(model)
        chain["last"] = [np.array(p.value) for pair in pairs for p in pair]
        _mlp_setname(ns, "train_step", recording_step)
        try:
            history = _mlp_call(rec, "train", train, model, X, y, eta, epochs, batch_size=batch, seed=seed)
        finally:
            _mlp_setname(ns, "train_step", step)
        after = [p.value for pair in pairs for p in pair]
        chain["broken"] += any(not np.array_equal(a, b, equal_nan=True) for a, b in zip(after, chain["last"]))
        rec["chain"] = {k: v for k, v in chain.items() if k != "last"}
        graph = _get(ns, "params") or []
        # the weights judged must be the ones SGD trained: the graph's own Parameters
        rec["in_graph"] = all(any(p is q for q in graph) for pair in pairs for p in pair)
        rec["layers"] = _mlp_values(model)
    rec["losses"] = [_arr(h.get("loss")) if isinstance(h, dict) else None for h in list(history)[:1000]]


# ----------------------------------------------------------------------------------
# Expected records from the notebook's formulas (public; hidden uses the reference's)
# ----------------------------------------------------------------------------------

def _mlp_numeric_grad(layers, X, y, act, h=1e-6):
    grads = []
    for W, b in layers:
        pair = []
        for a in (W, b):
            g = np.zeros_like(a)
            for i in np.ndindex(a.shape):
                old = a[i]
                a[i] = old + h
                up = mlp_loss(layers, X, y, act)
                a[i] = old - h
                down = mlp_loss(layers, X, y, act)
                a[i] = old
                g[i] = (up - down) / (2 * h)
            pair.append(g)
        grads.append(pair)
    return grads


def _mlp_order(n, epochs, batch_size, seed):
    rng = np.random.default_rng(seed)
    return [[rows for rows in np.array_split(rng.permutation(n), max(1, n // batch_size))] for _ in range(epochs)]


def mlp_expected(spec) -> dict:
    """The expected record of a spec, from the notebook's formulas (no solution code)."""
    check = spec["check"]
    if check == "mlp_build":
        return {"logits": mlp_forward(spec["layers"], spec["X"], spec["activation"]),
                "loss": mlp_loss(spec["layers"], spec["X"], spec["labels"], spec["activation"])}
    if check == "mlp_predict":
        if spec.get("case") == "final":
            return {}
        return {"pred": np.argmax(mlp_forward(spec["layers"], spec["X"], spec["activation"]), axis=-1),
                "pred2": np.argmax(mlp_forward(spec["layers2"], np.asarray(spec["X"])[:7], spec["activation"]), axis=-1)}
    if check == "mlp_train_step":
        layers = [[np.array(W, dtype=float), np.array(b, dtype=float)] for W, b in spec["layers"]]
        grads = _mlp_numeric_grad(layers, spec["X"], spec["y"], spec["activation"])
        return {"loss": mlp_loss(layers, spec["X"], spec["y"], spec["activation"]),
                "after": [[W - spec["eta"] * gW, b - spec["eta"] * gb] for (W, b), (gW, gb) in zip(layers, grads)],
                "numeric": True}
    if check == "mlp_train":
        X = np.asarray(spec["X"])
        return {"batches": [X[rows, 0] for epoch in _mlp_order(len(X), spec["epochs"], spec["batch_size"], spec["seed"])
                            for rows in epoch]}
    raise ValueError(f"no expectation for {check!r}")


def mlp_exact(spec, reference_record) -> dict:
    """The reference's own probe record as the expectation (exact tolerances)."""
    return dict(reference_record)


# ----------------------------------------------------------------------------------
# Judges
# ----------------------------------------------------------------------------------

def _mlp_close(got, want, rtol=MLP_RTOL, atol=MLP_ATOL):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    scale = atol * (1.0 + float(np.max(np.abs(want), initial=0.0)))
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(got - want) <= scale + rtol * np.abs(want)))


def _mlp_numeric_layers(layers, shapes):
    """``layers`` as float arrays of the given (W shape, b shape) pairs, or a reason why not."""
    if not isinstance(layers, list) or len(layers) != len(shapes):
        return None, f"{len(layers) if isinstance(layers, list) else 'no'} layers, expected {len(shapes)}"
    out = []
    for l, (pair, (ws, bs)) in enumerate(zip(layers, shapes), start=1):
        if not isinstance(pair, list) or len(pair) != 2:
            return None, f"layer {l} is not a (W, b) pair"
        W, b = pair
        for name, a, shape in ((f"W{l}", W, ws), (f"b{l}", b, bs)):
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
                return None, f"{name} is not a numeric array"
            if a.shape != tuple(shape):
                return None, f"{name} has shape {a.shape}, expected {tuple(shape)}"
        out.append([np.asarray(W, dtype=float), np.asarray(b, dtype=float)])
    return out, None


def _mlp_shapes(sizes):
    return [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:])]


def _mlp_symmetric(W):
    """True when two units (columns) of W are identical."""
    return W.shape[1] > 1 and np.unique(W.T, axis=0).shape[0] < W.shape[1]


def _mlp_where(spec):
    return f"build_mlp({tuple(spec['sizes'])}, {spec['activation']!r})"


def _mlp_net(spec):
    return f"a {'-'.join(map(str, spec['sizes']))} {spec['activation']} network"


def judge_mlp_build(spec, record, expected) -> CaseResult:
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


def _mlp_error(record, where):
    stage = str(record.get("error_at", ""))
    err = record.get("error") if isinstance(record.get("error"), dict) else {}
    if err.get("type") == "contract":
        return _fail("wrong_graph" if stage != "final_settings" else "bad_settings", where,
                     str(err.get("message", ""))[:300] + ".")
    if stage == "final_settings" and err.get("type") not in ("missing",):
        return _fail("bad_settings", where, str(err.get("message", ""))[:300])
    return _error_case(record, where + (f", in {stage}" if stage and stage not in where else ""))


def judge_mlp_predict(spec, record, expected) -> CaseResult:
    if spec.get("case") == "final":
        return _judge_final_predict(spec, record)
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


def _judge_final_predict(spec, record) -> CaseResult:
    where = "predict(X) of your final network"
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


def judge_mlp_train_step(spec, record, expected) -> CaseResult:
    where = f"train_step on {_mlp_net(spec)}"
    if "error" in record:
        return _mlp_error(record, where)
    shapes = _mlp_shapes([int(s) for s in spec["sizes"]])
    after, why = _mlp_numeric_layers(record.get("after"), shapes)
    if why:
        return _fail("wrong_update", where, f"after the step, {why}.")
    before = [[np.asarray(W, dtype=float), np.asarray(b, dtype=float)] for W, b in spec["layers"]]
    want = [[np.asarray(W, dtype=float), np.asarray(b, dtype=float)] for W, b in expected["after"]]
    flat = lambda ls: np.concatenate([a.ravel() for pair in ls for a in pair])  # noqa: E731
    got, b0, w1 = flat(after), flat(before), flat(want)
    rtol, atol = (1e-5, 1e-7) if expected.get("numeric") else (MLP_RTOL, MLP_ATOL)
    if not _mlp_close(got, w1, rtol, atol):
        step = b0 - w1  # = eta * gradient
        if np.array_equal(got, b0):
            return _fail("no_update", where, "the parameters are unchanged after the step.")
        if _mlp_close(got, b0 + step, rtol, atol):
            return _fail("update_sign", where, "each parameter moved by +eta * gradient: the loss rises.")
        r = float(np.dot(got - b0, step) / np.dot(step, step))
        if abs(r) > 1e-9 and _mlp_close(got, b0 - r * step, rtol, atol):
            return _fail("wrong_update", where, f"the step is {r:.4g} times the correct one: SGD(eta) with the "
                         "eta it was given.")
        return _fail("wrong_update", where, "the parameters after the step differ from one SGD step on the "
                     "batch.", {"max_abs_err": float(np.nanmax(np.abs(got - w1)))})
    loss = record.get("loss")
    if not isinstance(loss, np.ndarray) or loss.shape != () or not _mlp_close(loss, expected["loss"], rtol, atol):
        if isinstance(loss, np.ndarray) and loss.shape == () and _mlp_close(
                loss, mlp_loss(want, spec["X"], spec["y"], spec["activation"]), rtol, atol):
            return _fail("wrong_update", where, "returned the loss after the update; return the batch's loss "
                         "Forward() computed, before SGD.")
        return _fail("wrong_update", where, f"returned {None if loss is None else np.asarray(loss).tolist()}, "
                     f"expected the batch loss {float(expected['loss']):.6g} as a float.")
    return CaseResult(True)


def judge_mlp_train(spec, record, expected) -> CaseResult:
    where = f"train(..., epochs={spec['epochs']}, batch_size={spec['batch_size']}, seed=...) on {len(spec['X'])} rows"
    if "error" in record:
        return _mlp_error(record, where)
    X, y = np.asarray(spec["X"]), np.asarray(spec["y"])
    row_of = {float(v): i for i, v in enumerate(X[:, 0])}
    want = [[row_of[float(v)] for v in np.asarray(b)] for b in expected["batches"]]
    batches = record.get("batches")
    if not isinstance(batches, list) or not batches:
        return _fail("wrong_batches", where, "train did not call train_step (it must, once per batch).")
    got = []
    for k, b in enumerate(batches):
        if not isinstance(b, np.ndarray) or b.ndim != 1 or any(float(v) not in row_of for v in b):
            return _fail("wrong_batches", where, f"batch {k + 1} does not consist of rows of X.")
        got.append([row_of[float(v)] for v in b])
    labels, etas, same = record.get("labels"), record.get("etas"), record.get("same_model")
    for k, rows in enumerate(got):
        lab = labels[k] if isinstance(labels, list) and k < len(labels) else None
        if not isinstance(lab, np.ndarray) or lab.shape != (len(rows),) or np.any(lab != y[rows]):
            return _fail("wrong_batches", where, f"batch {k + 1}: the labels are not the labels of its rows.")
        eta = etas[k] if isinstance(etas, list) and k < len(etas) else None
        if not isinstance(eta, np.ndarray) or eta.shape != () or float(eta) != float(spec["eta"]):
            return _fail("wrong_batches", where, f"batch {k + 1} was trained with eta = "
                         f"{None if eta is None else float(eta)}, not the eta given to train ({spec['eta']}).")
        if not (isinstance(same, list) and k < len(same) and same[k] is True):
            return _fail("wrong_batches", where, "train_step was called with another model than the one given.")
    if got != want:
        per_epoch = len(want) // spec["epochs"]
        n = len(X)
        epochs_got = [sum(got[e * per_epoch:(e + 1) * per_epoch], []) for e in range(spec["epochs"])]
        sizes_ok = [len(r) for r in got] == [len(r) for r in want]
        if sizes_ok and all(o == list(range(n)) for o in epochs_got):
            return _fail("no_shuffle", where, "every epoch visits rows 0, 1, 2, ... in order.")
        if sizes_ok and all(sorted(o) == list(range(n)) for o in epochs_got) and \
                all(o == epochs_got[0] for o in epochs_got[1:]):
            return _fail("order_repeats", where, "each epoch visits the rows in the same order.")
        if sizes_ok and all(sorted(o) == list(range(n)) for o in epochs_got):
            return _fail("wrong_order", where, "each epoch visits every row once, but not in the order "
                         "np.random.default_rng(seed).permutation gives.")
        return _fail("wrong_batches", where, f"train_step got {len(got)} batches of sizes "
                     f"{[len(r) for r in got[:8]]}{'...' if len(got) > 8 else ''}; expected {len(want)} "
                     f"({spec['epochs']} epochs of {per_epoch}) of sizes {[len(r) for r in want[:8]]}...")
    history, losses = record.get("history"), record.get("losses")
    per_epoch = len(want) // spec["epochs"]
    if not isinstance(history, list) or len(history) != spec["epochs"]:
        return _fail("wrong_history", where, f"returned a history of {len(history) if isinstance(history, list) else 'no'} "
                     f"records, expected one per epoch ({spec['epochs']}).")
    for e, item in enumerate(history, start=1):
        epoch, loss = item if isinstance(item, list) and len(item) == 2 else (None, None)
        batch_losses = losses[(e - 1) * per_epoch:e * per_epoch] if isinstance(losses, list) else []
        mean = float(np.mean([float(v) for v in batch_losses])) if batch_losses and all(
            isinstance(v, np.ndarray) and v.shape == () for v in batch_losses) else None
        if not isinstance(epoch, np.ndarray) or epoch.shape != () or float(epoch) != e:
            return _fail("wrong_history", where, f"record {e} has 'epoch' {None if epoch is None else epoch.tolist()}, "
                         f"expected {e}.")
        if mean is None or not isinstance(loss, np.ndarray) or loss.shape != () or not _mlp_close(loss, mean, 1e-9, 1e-12):
            return _fail("wrong_history", where, f"record {e} has 'loss' {None if loss is None else loss.tolist()}, "
                         f"expected the mean of that epoch's batch losses ({mean}).")
    return CaseResult(True)


def judge_mlp_learning(spec, record, X_eval, y_eval, target) -> CaseResult:
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
    losses = [float(v) for v in losses if isinstance(v, np.ndarray) and v.shape == ()] if isinstance(losses, list) else []
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


MLP_JUDGES = {"mlp_build": judge_mlp_build, "mlp_predict": judge_mlp_predict,
              "mlp_train_step": judge_mlp_train_step, "mlp_train": judge_mlp_train}


def mlp_numeric_case(ns, spec) -> CaseResult:
    """One spec checked against the notebook's formulas (the public expectation)."""
    return MLP_JUDGES[spec["check"]](spec, probe(ns, spec), mlp_expected(spec))


def check_mlp(ns, check, seed=0, test_id=None):
    """The public check of one mlp kind on its cases for ``seed``."""
    with _quiet():
        return combine(test_id or check, [mlp_numeric_case(ns, s) for s in mlp_specs(check, seed)])


def check_mlp_build(ns, seed=0, test_id=None):
    """build_mlp: shapes, dtype, a seeded He initialisation, the graph's logits and loss."""
    return check_mlp(ns, "mlp_build", seed, test_id)


def check_mlp_predict(ns, seed=0, test_id=None):
    """MLP.predict / MLP.accuracy with weights the checks set, and the final predict(X)."""
    return check_mlp(ns, "mlp_predict", seed, test_id)


def check_mlp_train_step(ns, seed=0, test_id=None):
    """One train_step from known weights and a batch, against one SGD step."""
    return check_mlp(ns, "mlp_train_step", seed, test_id)


def check_mlp_train(ns, seed=0, test_id=None):
    """The batches train hands to train_step, against the order its seed fixes."""
    return check_mlp(ns, "mlp_train", seed, test_id)


def _mlp_kind_specs(test, params, ns=None, classes=None) -> list:
    return [s for seed in _seeds(params) for s in mlp_specs(test["check"], seed)]


register(Kind("mlp_accuracy", probe=_probe_mlp, judge=judge_mlp_accuracy))
register(Kind("mlp_build", probe=_probe_mlp_build, judge=judge_mlp_build, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
register(Kind("mlp_predict", probe=_probe_mlp_predict, judge=judge_mlp_predict, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
register(Kind("mlp_train_step", probe=_probe_mlp_train_step, judge=judge_mlp_train_step, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
register(Kind("mlp_train", probe=_probe_mlp_train, judge=judge_mlp_train, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
register(Kind("mlp_learning", probe=_probe_mlp_learning, judge=judge_mlp_learning))
