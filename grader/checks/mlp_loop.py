"""Check kinds ``mlp_train_step`` and ``mlp_train``: one ``train_step`` from weights and a
batch the grader chooses, against one SGD step; and the batches ``train`` hands to
``train_step`` epoch by epoch, against the order ``np.random.default_rng(seed)`` fixes, and its
history. ``train_step`` runs in a graph of the given components, so a wrong ``build_mlp`` is
not charged again; ``train`` runs on a stand-in model with a stand-in ``train_step`` (known
losses, predictions that follow the steps taken), so neither is charged to it.
"""
import numpy as np

from .base import CaseResult, Kind, Result, _arr, _fail, _get, _graph_lists, _need, register
from .mlp_net import (MLP_ATOL, MLP_RTOL, _MlpModel, _TrainStandIn, _mlp_call, _mlp_close, _mlp_error, _mlp_guard,
                      _mlp_kind_specs, _mlp_net, _mlp_numeric_layers, _mlp_setname, _mlp_shapes,
                      _mlp_values, check_mlp, mlp_exact, mlp_loss, mlp_numeric_case, mlp_stand_in_labels,
                      mlp_stand_in_loss)
from .types import MlpRecord, MlpSpec, Namespace, Opaque

@_mlp_guard
def _probe_mlp_train_step(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    step = _need(ns, "train_step")
    with _graph_lists(ns):
        _need(ns, "clear_compgraph")()
        model = _MlpModel(ns, spec["sizes"], spec["activation"], spec["layers"])
        loss = _mlp_call(rec, "train_step", step, model, np.array(spec["X"]), np.array(spec["y"]), spec["eta"])
        rec["loss"] = _arr(loss)
        rec["after"] = _mlp_values(model)


@_mlp_guard
def _probe_mlp_train(ns: Namespace, spec: MlpSpec, rec: MlpRecord) -> None:
    """The student's ``train`` on a stand-in model with a stand-in ``train_step`` (known losses,
    predictions that follow the steps taken): what train does is judged, nothing else."""
    train = _need(ns, "train")
    X, y = np.array(spec["X"]), np.array(spec["y"])
    this, calls = _TrainStandIn(), []

    def stand_in_step(model: Opaque, Xb: np.ndarray, yb: np.ndarray, eta: float) -> float:
        if len(calls) < 1000:
            calls.append((_arr(np.asarray(Xb)[:, 0]), _arr(yb), _arr(eta), model is this))
        loss = mlp_stand_in_loss(this.steps)
        this.steps += 1
        return loss

    kwargs = {"batch_size": spec["batch_size"], "seed": spec["seed"]}
    if "X_val" in spec:
        kwargs.update(X_val=np.array(spec["X_val"]), y_val=np.array(spec["y_val"]))
    own = _get(ns, "train_step")
    with _graph_lists(ns):
        _mlp_setname(ns, "train_step", stand_in_step)
        try:
            history = _mlp_call(rec, "train", train, this, X, y, spec["eta"], spec["epochs"], **kwargs)
        finally:
            _mlp_setname(ns, "train_step", own)
    rec["batches"] = [c[0] for c in calls]
    rec["labels"] = [c[1] for c in calls]
    rec["etas"] = [c[2] for c in calls]
    rec["same_model"] = [bool(c[3]) for c in calls]
    records = [h if isinstance(h, dict) else {} for h in list(history)[:1000]]
    rec["history"] = [[_arr(h.get("epoch")), _arr(h.get("loss")), _arr(h.get("val_acc"))] for h in records]
    rec["has_val"] = ["val_acc" in h and h["val_acc"] is not None for h in records]


def judge_mlp_train_step(spec: MlpSpec, record: MlpRecord, expected: dict) -> CaseResult:
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


def judge_mlp_train(spec: MlpSpec, record: MlpRecord, expected: dict) -> CaseResult:
    where = (f"train(..., epochs={spec['epochs']}, batch_size={spec['batch_size']}, seed=...) on {len(spec['X'])} rows"
             + (", with X_val, y_val" if "X_val" in spec else ""))
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
            return _fail("train_order", where, "each epoch visits every row once, but not in the order "
                         "np.random.default_rng(seed).permutation gives.")
        return _fail("wrong_batches", where, f"train_step got {len(got)} batches of sizes "
                     f"{[len(r) for r in got[:8]]}{'...' if len(got) > 8 else ''}; expected {len(want)} "
                     f"({spec['epochs']} epochs of {per_epoch}) of sizes {[len(r) for r in want[:8]]}...")
    history, has_val = record.get("history"), record.get("has_val")
    per_epoch = len(want) // spec["epochs"]
    if not isinstance(history, list) or len(history) != spec["epochs"]:
        return _fail("wrong_history", where, f"returned a history of {len(history) if isinstance(history, list) else 'no'} "
                     f"records, expected one per epoch ({spec['epochs']}).")
    val = "X_val" in spec
    for e, item in enumerate(history, start=1):
        epoch, loss, acc = item if isinstance(item, list) and len(item) == 3 else (None, None, None)
        mean = float(np.mean([mlp_stand_in_loss(k) for k in range((e - 1) * per_epoch, e * per_epoch)]))
        if not isinstance(epoch, np.ndarray) or epoch.shape != () or float(epoch) != e:
            return _fail("wrong_history", where, f"record {e} has 'epoch' {None if epoch is None else epoch.tolist()}, "
                         f"expected {e}.")
        if not isinstance(loss, np.ndarray) or loss.shape != () or not _mlp_close(loss, mean, 1e-9, 1e-12):
            return _fail("wrong_history", where, f"record {e} has 'loss' {None if loss is None else loss.tolist()}, "
                         f"expected the mean of that epoch's batch losses ({mean:.6g}).")
        shown = isinstance(has_val, list) and e <= len(has_val) and has_val[e - 1] is True
        if not val:
            if shown:
                return _fail("wrong_history", where, f"record {e} has 'val_acc' although no validation data "
                             "was given.")
            continue
        X_val, y_val = np.asarray(spec["X_val"]), np.asarray(spec["y_val"])
        want_acc = float(np.mean(mlp_stand_in_labels(X_val, e * per_epoch) == y_val))
        if not shown or not isinstance(acc, np.ndarray) or acc.shape != () or acc.dtype.kind not in "biuf" \
                or not abs(float(acc) - want_acc) <= 1e-12:
            got = "no 'val_acc'" if not shown else f"'val_acc' {np.asarray(acc).tolist()}"
            before = float(np.mean(mlp_stand_in_labels(X_val, (e - 1) * per_epoch) == y_val))
            when = (" (the accuracy before that epoch's steps: measure it after the epoch)"
                    if shown and isinstance(acc, np.ndarray) and acc.shape == () and acc.dtype.kind in "biuf"
                    and abs(float(acc) - before) <= 1e-12 else "")
            return _fail("wrong_history", where, f"with validation data, record {e} has {got}{when}; expected "
                         f"model.accuracy(X_val, y_val) after the epoch ({want_acc:.6g}).")
    return CaseResult(True)


def check_mlp_train_step(ns: Namespace, seed: int = 0, test_id: str | None = None) -> Result:
    """One train_step from known weights and a batch, against one SGD step."""
    return check_mlp(ns, "mlp_train_step", seed, test_id)


def check_mlp_train(ns: Namespace, seed: int = 0, test_id: str | None = None) -> Result:
    """The batches train hands to train_step, against the order its seed fixes."""
    return check_mlp(ns, "mlp_train", seed, test_id)


register(Kind("mlp_train_step", probe=_probe_mlp_train_step, judge=judge_mlp_train_step, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
register(Kind("mlp_train", probe=_probe_mlp_train, judge=judge_mlp_train, specs=_mlp_kind_specs,
              numeric_case=mlp_numeric_case, exact=mlp_exact))
