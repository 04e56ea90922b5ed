"""Shared by the mlp_training check kinds (``mlp_units``, ``mlp_loop``, ``mlp``): the network in
NumPy (the notebook's formulas), the specs, probe helpers that build graphs from the given
components, the expected records from the formulas (public; ``hidden`` uses the reference's
own records instead), and the judges' helpers. Registers no kind.
"""
import numpy as np

from .base import DIAGNOSES, KINDS, CaseResult, Result, _arr, _err, _fail, _need, _quiet, _seeds, combine, probe
from .compare import _error_case
from .types import MlpRecord, MlpSpec, Namespace, Opaque, Probe, ProbeBody

MLP_UNIT_KINDS = ("mlp_build", "mlp_predict", "mlp_train_step", "mlp_train")
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
    "train_order": ("the rows are not visited in the order the seed fixes", "Make one rng = np.random.default_rng(seed) before the first epoch; each epoch order = rng.permutation(len(X))."),
    "wrong_batches": ("the batches are cut differently", "Cut each epoch's order with np.array_split(order, max(1, len(X) // batch_size)) and call train_step on each part in turn."),
    "wrong_history": ("the history is wrong", "Append {'epoch': e, 'loss': mean of the epoch's batch losses} after each epoch, e counting from 1, with 'val_acc': model.accuracy(X_val, y_val) after the epoch when X_val is given (and only then)."),
    "outside_train_step": ("the network was not trained by train_step", "train must call train_step(model, X[rows], y[rows], eta) on every batch, and nothing else may change the weights."),
    "not_learning": ("training does not learn", "The training loss should fall: check train_step's update and that train passes eta and the batches."),
    "too_weak": ("the trained network is not accurate enough", "Train longer or with another learning rate or width (final_settings); your experiments show what works."),
    "diverged": ("training diverged (NaN or inf weights)", "The learning rate is too large for this network: lower final_settings['eta']."),
    "bad_settings": ("final_settings is not usable", "Set final_settings as the notebook says: sizes, activation, eta, epochs, batch_size, within the stated limits."),
})


# ----------------------------------------------------------------------------------
# The network in NumPy: the notebook's formulas
# ----------------------------------------------------------------------------------

def _mlp_phi(h: np.ndarray, activation: str) -> np.ndarray:
    return np.maximum(h, 0.0) if activation == "relu" else np.tanh(h)


def mlp_forward(layers: list, X: np.ndarray, activation: str | None, last: str | None = None) -> np.ndarray:
    """Logits of the MLP with weights ``layers`` = [(W, b), ...]; ``last`` (an activation name
    or None) is applied to the logits too, to recognise that mistake."""
    h = np.asarray(X, dtype=float)
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1 and activation:
            h = _mlp_phi(h, activation)
    return _mlp_phi(h, last) if last else h


def mlp_loss(layers: list, X: np.ndarray, y: np.ndarray, activation: str) -> float:
    z = mlp_forward(layers, X, activation)
    return float(np.mean(np.logaddexp.reduce(z, axis=-1) - z[np.arange(len(z)), np.asarray(y, dtype=int)]))


def mlp_weights(sizes: list[int], seed: int) -> list[list[np.ndarray]]:
    """Weights the grader sets into a network: not the He initialisation, so that a network
    that ignores them is seen; biases non-zero, so that a missing bias is seen."""
    rng = np.random.default_rng(seed)
    return [[rng.normal(0.0, 1.5 / np.sqrt(a), (a, b)), rng.normal(0.0, 0.3, b)]
            for a, b in zip(sizes[:-1], sizes[1:])]


def _mlp_rng(check: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([sum(map(ord, check)), int(seed)])


# ----------------------------------------------------------------------------------
# Specs (the same builder for visible and hidden tests; the seed differs)
# ----------------------------------------------------------------------------------

MLP_NETS = (((64, 32, 10), "relu"), ((64, 16, 16, 10), "tanh"), ((64, 10), "relu"))
MLP_SMALL_NETS = (((6, 5, 4), "relu"), ((6, 5, 5, 4), "tanh"))
MLP_TRAIN_WIDTH, MLP_TRAIN_CLASSES = 6, 4  # train's cases: rows of 6 features, 4 classes


def mlp_stand_in_labels(X: np.ndarray, steps: int = 0) -> np.ndarray:
    """The classes ``_TrainStandIn`` predicts after ``steps`` training steps: the argmax of the
    first ``MLP_TRAIN_CLASSES`` features, rotated by the number of steps."""
    return (np.argmax(np.asarray(X, dtype=float)[:, :MLP_TRAIN_CLASSES], axis=-1) + steps) % MLP_TRAIN_CLASSES


def mlp_stand_in_loss(k: int) -> float:
    """The loss the stand-in ``train_step`` returns on its ``k``-th call (from 0): all different."""
    return 1.0 / (k + 2.0)


def mlp_final_spec(seed: int) -> MlpSpec:
    """The case of the notebook's ``predict``: known weights set into the final network (the
    ``accuracy`` test's, whose target ``predict`` is)."""
    rng = _mlp_rng("mlp_final", seed)
    return {"check": "mlp_predict", "case": "final", "seed": int(rng.integers(1 << 30)),
            "X": rng.uniform(0.0, 1.0, (40, MLP_LIMITS["inputs"]))}


def mlp_specs(check: str, seed: int = 0) -> list[MlpSpec]:
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
                          "layers": mlp_weights(sizes, rng.integers(1 << 30)), "layers2": mlp_weights(sizes, rng.integers(1 << 30)),
                          "X": rng.uniform(0.0, 1.0, (40, sizes[0])), "y": rng.integers(0, sizes[-1], 40)})
    elif check == "mlp_train_step":
        for sizes, act in MLP_SMALL_NETS:
            specs.append({"check": check, "sizes": list(sizes), "activation": act,
                          "layers": mlp_weights(sizes, rng.integers(1 << 30)),
                          "X": rng.normal(0.0, 1.0, (8, sizes[0])), "y": rng.integers(0, sizes[-1], 8),
                          "eta": float(rng.uniform(0.2, 0.6))})
    elif check == "mlp_train":
        # train on a stand-in model and train_step (``_TrainStandIn``): judged on its own.
        # Case 1: 23 rows, batches of 5 (not a multiple: array_split's uneven batches), no
        # validation data. Case 2: fewer rows than batch_size (max(1, ...) gives one batch),
        # with validation data whose accuracy differs after every step (val_acc's timing).
        for n, batch, epochs, val in ((23, 5, 3, False), (7, 10, 2, True)):
            spec = {"check": check, "X": rng.normal(0.0, 1.0, (n, MLP_TRAIN_WIDTH)),
                    "y": rng.integers(0, MLP_TRAIN_CLASSES, n), "eta": float(rng.uniform(0.05, 0.2)),
                    "epochs": epochs, "batch_size": batch, "seed": int(rng.integers(1 << 30))}
            if val:
                spec["X_val"] = rng.normal(0.0, 1.0, (10, MLP_TRAIN_WIDTH))
                # row i is predicted right exactly when k = r_i (mod C) after k steps; r takes
                # the value c on c + 1 rows, so the accuracy after k steps is (k mod C + 1) / 10
                r = rng.permutation(np.repeat(np.arange(MLP_TRAIN_CLASSES), np.arange(1, MLP_TRAIN_CLASSES + 1)))
                spec["y_val"] = (mlp_stand_in_labels(spec["X_val"]) + r) % MLP_TRAIN_CLASSES
            specs.append(spec)
    else:
        raise ValueError(f"no specs for {check!r}")
    return specs


# ----------------------------------------------------------------------------------
# Probes (run in the child, on the student's namespace)
# ----------------------------------------------------------------------------------

class _MlpStage(Exception):
    """A contract violation found while probing (not an exception of the student's code)."""


def _mlp_pairs(model: Opaque) -> list:
    layers = list(getattr(model, "layers"))
    if not 0 < len(layers) <= MLP_MAX_LAYERS or not all(len(pair) == 2 for pair in layers):
        raise _MlpStage("model.layers must be a list of (W, b) Parameter pairs, first layer first")
    return layers


def _mlp_values(model: Opaque) -> list[list[np.ndarray | None]]:
    return [[_arr(W.value), _arr(b.value)] for W, b in _mlp_pairs(model)]


def _mlp_set(pairs: list, layers: list) -> None:
    if len(pairs) != len(layers):
        raise _MlpStage(f"model.layers has {len(pairs)} (W, b) pairs, expected {len(layers)}")
    for (W, b), (Wv, bv) in zip(pairs, layers):
        W.value, b.value = np.array(Wv, dtype=np.float64), np.array(bv, dtype=np.float64)


def _mlp_call(rec: MlpRecord, stage: str, fn: Opaque, *args: object, **kwargs: object) -> Opaque:
    rec["stage"] = stage
    return fn(*args, **kwargs)


def _kept(rec: MlpRecord, error: MlpRecord) -> MlpRecord:
    """An error record keeps the settings read before the error (the learning case's judge
    asks whether they learn with correct functions)."""
    if isinstance(rec.get("settings"), dict):
        error["settings"] = rec["settings"]
    return error


def _mlp_guard(fn: ProbeBody) -> Probe:
    """Run a probe body; an exception becomes an error record naming the call that raised."""
    def run(ns: Namespace, spec: MlpSpec) -> MlpRecord:
        rec = {}
        try:
            fn(ns, spec, rec)
        except _MlpStage as e:
            return _kept(rec, {"error": {"type": "contract", "message": str(e)[:300]}, "error_at": rec.get("stage", "")})
        except (Exception, SystemExit) as e:
            return _kept(rec, {"error": _err(e), "error_at": rec.get("stage", "")})
        rec.pop("stage", None)
        return rec
    run.__name__ = fn.__name__
    return run


class _MlpModel:
    """The network of a train_step/train case, built from the given components (so that a
    wrong build_mlp is not charged again here); the same fields as the notebook's MLP."""

    def __init__(self, ns: Namespace, sizes: list[int], activation: str, layers: list) -> None:
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

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise _MlpStage("train must not predict when no validation data is given")

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        raise _MlpStage("train must not measure accuracy when no validation data is given")


class _TrainStandIn:
    """The model a train case hands to ``train``: a harness stand-in whose predictions follow
    the number of steps the stand-in ``train_step`` took (``mlp_stand_in_labels``), so that
    ``train`` is judged on its own, whatever the student's build_mlp, train_step and MLP do."""

    def __init__(self) -> None:
        self.steps = 0

    def predict(self, X: np.ndarray | None) -> np.ndarray:
        if X is None:
            raise _MlpStage("train must not predict when no validation data is given")
        return mlp_stand_in_labels(X, self.steps)

    def accuracy(self, X: np.ndarray | None, y: np.ndarray | None) -> float:
        if X is None or y is None:
            raise _MlpStage("train must not measure accuracy when no validation data is given")
        return float(np.mean(self.predict(X) == np.asarray(y)))


def _mlp_setname(ns: Namespace, name: str, value: object) -> None:
    if isinstance(ns, dict):
        ns[name] = value
    else:
        setattr(ns, name, value)


# ----------------------------------------------------------------------------------
# Expected records from the notebook's formulas (public; hidden uses the reference's)
# ----------------------------------------------------------------------------------

def _mlp_numeric_grad(layers: list, X: np.ndarray, y: np.ndarray, act: str, h: float = 1e-6) -> list[list[np.ndarray]]:
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


def _mlp_order(n: int, epochs: int, batch_size: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rows for rows in np.array_split(rng.permutation(n), max(1, n // batch_size))] for _ in range(epochs)]


def mlp_expected(spec: MlpSpec) -> dict:
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


def mlp_exact(spec: MlpSpec, reference_record: MlpRecord) -> dict:
    """The reference's own probe record as the expectation (exact tolerances)."""
    return dict(reference_record)


# ----------------------------------------------------------------------------------
# Judges
# ----------------------------------------------------------------------------------

def _mlp_close(got: object, want: object, rtol: float = MLP_RTOL, atol: float = MLP_ATOL) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    scale = atol * (1.0 + float(np.max(np.abs(want), initial=0.0)))
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(got - want) <= scale + rtol * np.abs(want)))


def _mlp_numeric_layers(layers: object, shapes: list[tuple]) -> tuple[list | None, str | None]:
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


def _mlp_shapes(sizes: list[int]) -> list[tuple[tuple[int, int], tuple[int]]]:
    return [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:])]


def _mlp_symmetric(W: np.ndarray) -> bool:
    """True when two units (columns) of W are identical."""
    return W.shape[1] > 1 and np.unique(W.T, axis=0).shape[0] < W.shape[1]


def _mlp_where(spec: MlpSpec) -> str:
    return f"build_mlp({tuple(spec['sizes'])}, {spec['activation']!r})"


def _mlp_net(spec: MlpSpec) -> str:
    return f"a {'-'.join(map(str, spec['sizes']))} {spec['activation']} network"


def _mlp_error(record: MlpRecord, where: str) -> CaseResult:
    stage = str(record.get("error_at", ""))
    err = record.get("error") if isinstance(record.get("error"), dict) else {}
    if err.get("type") == "contract":
        code = {"final_settings": "bad_settings", "train": "wrong_history"}.get(stage, "wrong_graph")
        return _fail(code, where, str(err.get("message", ""))[:300] + ".")
    if stage == "final_settings" and err.get("type") not in ("missing",):
        return _fail("bad_settings", where, str(err.get("message", ""))[:300])
    return _error_case(record, where + (f", in {stage}" if stage and stage not in where else ""))


def mlp_numeric_case(ns: Namespace, spec: MlpSpec) -> CaseResult:
    """One spec checked against the notebook's formulas (the public expectation)."""
    return KINDS[spec["check"]].judge(spec, probe(ns, spec), mlp_expected(spec))


def check_mlp(ns: Namespace, check: str, seed: int = 0, test_id: str | None = None) -> Result:
    """The public check of one mlp kind on its cases for ``seed``."""
    with _quiet():
        return combine(test_id or check, [mlp_numeric_case(ns, s) for s in mlp_specs(check, seed)])


def _mlp_kind_specs(test: dict, params: dict, ns: Namespace = None, classes: object = None) -> list[MlpSpec]:
    return [s for seed in _seeds(params) for s in mlp_specs(test["check"], seed)]
