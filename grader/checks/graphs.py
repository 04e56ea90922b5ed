"""Graphs for the ``backward_loop`` kind, as data: named graphs and random ones over the
assignment's classes, their values by the stated formulas, consumers, and the valid
reverse-topological prefix of a processing order.
"""
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .base import _quiet
from .contract import ALL_CLASSES, ELEMENTWISE, FORMULAS, GRAPH_INPUTS, OPERANDS


def _node(name: str, kind: str, *args: str) -> dict:
    return {"name": name, "kind": kind, "args": list(args)}


# Stand-in components for testing a Backward loop on its own: affine maps of one or two
# operands, v = c0 + c1 * a (+ c2 * b), with known derivatives (a_bar += c1 * v_bar, ...).
# They are the harness's, built on the student's CompNode so they register in the
# student's `components`; a loop test on them charges no component bug of the student's.
STANDINS = {"Affine1": 1, "Affine2": 2}


def node_formula(n: dict) -> Callable[..., np.ndarray]:
    """The forward formula of a graph node: a contract class's, or a stand-in's affine map."""
    if n["kind"] in STANDINS:
        coef = [float(c) for c in n["coef"]]
        return lambda *xs: np.asarray(coef[0] + sum(c * np.asarray(x, dtype=float) for c, x in zip(coef[1:], xs)))
    return FORMULAS[n["kind"]]


def _graph(nodes: list[dict], values: dict, loss: str) -> dict:
    return {"nodes": nodes, "values": {k: np.asarray(v) for k, v in values.items()}, "loss": loss}


def _needs(classes: Sequence[str], *names: str) -> None:
    missing = [n for n in names if n not in classes]
    if missing:
        raise ValueError(f"this graph needs {missing}, which the assignment does not have")


def _g_x_times_x_plus_1(rng: np.random.Generator, classes: Sequence[str]) -> dict:
    _needs(classes, "Add", "Mul")
    return _graph([_node("x", "Input"), _node("one", "Input"), _node("u", "Add", "x", "one"),
                   _node("y", "Mul", "x", "u")], {"x": 17.0, "one": 1.0}, "y")


def _g_relu_affine(rng: np.random.Generator, classes: Sequence[str]) -> dict:
    _needs(classes, "Mul", "Add", "ReLU")
    return _graph([_node("W", "Parameter"), _node("x", "Input"), _node("b", "Parameter"),
                   _node("Wx", "Mul", "W", "x"), _node("z", "Add", "Wx", "b"), _node("y", "ReLU", "z")],
                  {"W": 2.0, "x": 3.0, "b": 1.0}, "y")


def _g_mlp2(rng: np.random.Generator, classes: Sequence[str]) -> dict:
    act = "ReLU" if "ReLU" in classes else "Tanh"
    _needs(classes, "VDot", "Add", act, "SoftmaxCrossEntropy")
    N, I, Hd, C = 4, 3, 5, 3
    for _ in range(100):  # keep pre-activations away from the ReLU kink
        vals = {"x": rng.normal(size=(N, I)), "labels": rng.integers(0, C, size=N).astype(np.int64),
                "W1": rng.normal(0, 0.8, size=(I, Hd)), "b1": rng.normal(0, 0.5, size=Hd),
                "W2": rng.normal(0, 0.8, size=(Hd, C)), "b2": rng.normal(0, 0.5, size=C)}
        if np.min(np.abs(vals["x"] @ vals["W1"] + vals["b1"])) > 0.05:
            break
    nodes = [_node("x", "Input"), _node("labels", "Input"), _node("W1", "Parameter"), _node("b1", "Parameter"),
             _node("W2", "Parameter"), _node("b2", "Parameter"),
             _node("h1", "VDot", "x", "W1"), _node("a1", "Add", "h1", "b1"), _node("r1", act, "a1"),
             _node("h2", "VDot", "r1", "W2"), _node("logits", "Add", "h2", "b2"),
             _node("loss", "SoftmaxCrossEntropy", "logits", "labels")]
    return _graph(nodes, vals, "loss")


def _g_shared_subexpr(rng: np.random.Generator, classes: Sequence[str]) -> dict:
    _needs(classes, "Sigmoid", "Square", "Mul", "Add")
    vector = "Sum" in classes
    x = rng.uniform(-2, 2, size=(3,) if vector else ())
    nodes = [_node("x", "Input"), _node("a", "Sigmoid", "x"), _node("b", "Square", "a"), _node("c", "Mul", "a", "x"),
             _node("d", "Add", "b", "c"), _node("e", "Add", "d", "x"), _node("m", "Mul", "e", "c")]
    if vector:
        nodes.append(_node("loss", "Sum", "m"))
    return _graph(nodes, {"x": x}, "loss" if vector else "m")


def _g_standin(rng: np.random.Generator, n: int) -> dict:
    """A random graph of ``n`` stand-in components on 0-d values: two inputs and two
    parameters, every leaf consumed, shared subexpressions (a node consumed by several
    components, once a node consumed twice by one), joined into one loss."""
    nodes, vals = [], {}
    for name, kind in (("x0", "Input"), ("x1", "Input"), ("w0", "Parameter"), ("w1", "Parameter")):
        nodes.append(_node(name, kind))
        vals[name] = np.asarray(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0))
    pool = [n["name"] for n in nodes]
    unused = list(pool)
    for i in range(n):
        kind = "Affine2" if i % 3 != 2 else "Affine1"
        args = []
        for _ in range(STANDINS[kind]):
            if unused:  # every leaf gets a consumer first
                args.append(unused.pop(0))
            elif i == n - 2 and kind == "Affine2" and args:
                args.append(args[0])  # one component consumes the same node twice
            else:
                args.append(pool[int(rng.integers(len(pool)))])
        coef = [float(rng.uniform(-1.0, 1.0))] + [float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0))
                                                 for _ in args]
        node = {**_node(f"n{i}", kind, *args), "coef": coef}
        nodes.append(node)
        vals[node["name"]] = node_formula(node)(*[vals[a] for a in args])
        pool.append(node["name"])
    consumed = {a for nd in nodes for a in nd.get("args", [])}
    dangling = [nd["name"] for nd in nodes if nd["kind"] in STANDINS and nd["name"] not in consumed]
    last = dangling[0]
    for i, other in enumerate(dangling[1:]):
        node = {**_node(f"j{i}", "Affine2", last, other),
                "coef": [0.0] + [float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)) for _ in range(2)]}
        nodes.append(node)
        last = node["name"]
    return _graph(nodes, {k: vals[k] for k in ("x0", "x1", "w0", "w1")}, last)


def _g_random(rng: np.random.Generator, classes: Sequence[str], n: int) -> dict:
    kinds = [k for k in ELEMENTWISE if k in classes]
    if not kinds:
        raise ValueError("random graphs need elementwise classes")
    reduce = next((k for k in ("Sum", "Mean") if k in classes), None)
    shape = (2, 3) if reduce else ()
    nodes, vals = [], {}
    for name, kind in (("x0", "Input"), ("x1", "Input"), ("w", "Parameter")):
        nodes.append(_node(name, kind))
        vals[name] = rng.uniform(-1.5, 1.5, size=shape)
    if reduce and ("Add" in kinds or "Mul" in kinds):
        nodes.append(_node("bias", "Parameter"))
        vals["bias"] = rng.uniform(-1, 1, size=(3,))
    pool = [n["name"] for n in nodes]
    consumed = set()
    made = 0
    for _ in range(20 * n):
        if made == n:
            break
        kind = kinds[rng.integers(len(kinds))]
        arity = len(OPERANDS[kind])
        args = [pool[i] for i in rng.integers(len(pool), size=arity)]
        if arity == 2 and args[0] == args[1] and rng.random() < 0.7:
            continue
        if kind in GRAPH_INPUTS and not GRAPH_INPUTS[kind](vals[args[0]]):
            continue
        with _quiet():
            value = FORMULAS[kind](*[vals[a] for a in args])
        if not np.all(np.isfinite(value)) or np.max(np.abs(value)) > 20:
            continue
        name = f"n{made}"
        nodes.append(_node(name, kind, *args))
        vals[name] = value
        pool.append(name)
        consumed.update(args)
        made += 1
    join = "Add" if "Add" in kinds else "Mul"
    dangling = [n["name"] for n in nodes if n["kind"] not in ("Input", "Parameter") and n["name"] not in consumed]
    last = dangling[0]
    for i, other in enumerate(dangling[1:]):
        name = f"j{i}"
        nodes.append(_node(name, join, last, other))
        vals[name] = FORMULAS[join](vals[last], vals[other])
        last = name
    if reduce:
        nodes.append(_node("loss", reduce, last))
        last = "loss"
    return _graph(nodes, {k: vals[k] for k in vals if k in ("x0", "x1", "w", "bias")}, last)


def _g_cnn(rng: np.random.Generator, classes: Sequence[str]) -> dict:
    """Conv2D -> ReLU -> MaxPool2D -> Flatten -> VDot -> Add -> SoftmaxCrossEntropy (default
    stride, padding and pool size), with pre-activations away from the ReLU kink and every
    pooling window's maximum positive and clear of its runner-up."""
    _needs(classes, "Conv2D", "ReLU", "MaxPool2D", "Flatten", "VDot", "Add", "SoftmaxCrossEntropy")
    N, C, F, S, K = 2, 2, 3, 6, 3
    for _ in range(1000):
        vals = {"x": rng.normal(size=(N, C, S, S)), "labels": rng.integers(0, 3, size=N).astype(np.int64),
                "K": rng.normal(0, 0.5, size=(F, C, K, K)), "c": rng.uniform(0.5, 1.5, size=F),
                "W": rng.normal(0, 0.5, size=(F * 4, 3)), "b": rng.normal(0, 0.5, size=3)}
        pre = FORMULAS["Conv2D"](vals["x"], vals["K"], vals["c"])
        win = np.sort(np.maximum(pre, 0).reshape(N, F, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, F, 4, 4), -1)
        if np.min(np.abs(pre)) > 0.05 and np.min(win[..., -1]) > 0.05 and np.min(win[..., -1] - win[..., -2]) > 0.05:
            break
    nodes = [_node("x", "Input"), _node("labels", "Input"), _node("K", "Parameter"), _node("c", "Parameter"),
             _node("W", "Parameter"), _node("b", "Parameter"),
             _node("conv", "Conv2D", "x", "K", "c"), _node("r", "ReLU", "conv"), _node("pool", "MaxPool2D", "r"),
             _node("flat", "Flatten", "pool"), _node("h", "VDot", "flat", "W"), _node("logits", "Add", "h", "b"),
             _node("loss", "SoftmaxCrossEntropy", "logits", "labels")]
    return _graph(nodes, vals, "loss")


GRAPHS = {"x_times_x_plus_1": _g_x_times_x_plus_1, "relu_affine": _g_relu_affine, "mlp2": _g_mlp2,
          "shared_subexpr": _g_shared_subexpr, "cnn": _g_cnn}


def build_graph(graph: str, seed: int = 0, classes: Sequence[str] | None = None) -> dict:
    """A named graph as data: nodes (name, kind, args) in creation order, leaf values, loss."""
    classes = tuple(classes or ALL_CLASSES)
    rng = np.random.default_rng(seed)
    if graph.startswith("random:"):
        return _g_random(rng, classes, int(graph.split(":", 1)[1]))
    if graph.startswith("standin:"):
        return _g_standin(rng, int(graph.split(":", 1)[1]))
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}")
    return GRAPHS[graph](rng, classes)


def evaluate_graph(g: dict, values: dict | None = None) -> dict:
    """Every node's value by the stated formulas."""
    vals = dict(values or g["values"])
    with _quiet():
        for n in g["nodes"]:
            if n["kind"] not in ("Input", "Parameter"):
                vals[n["name"]] = np.asarray(node_formula(n)(*[vals[a] for a in n["args"]]))
    return vals


def _components(g: dict) -> list[dict]:
    return [n for n in g["nodes"] if n["kind"] not in ("Input", "Parameter")]


def _judged(g: dict) -> list[str]:
    """Nodes whose grad the invariant constrains (label inputs of SoftmaxCrossEntropy receive none)."""
    labels = {n["args"][1] for n in g["nodes"] if n["kind"] == "SoftmaxCrossEntropy"}
    return [n["name"] for n in g["nodes"] if n["name"] not in labels]


def _consumers(g: dict) -> dict[int, set[int]]:
    comps = _components(g)
    pos = {n["name"]: i for i, n in enumerate(comps)}
    cons = {i: set() for i in range(len(comps))}
    for i, n in enumerate(comps):
        for a in n["args"]:
            if a in pos:
                cons[pos[a]].add(i)
    return cons


def record_order(record: Any) -> list[int]:
    """The component indices processed, from an untrusted record (ints only, else [])."""
    steps = record.get("steps") if isinstance(record, dict) else None
    if not isinstance(steps, list):
        return []
    out = []
    for s in steps:
        c = s.get("component") if isinstance(s, dict) else None
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            out.append(int(c))
        else:
            break
    return out


def valid_prefix(g: dict, order: list[int]) -> tuple[int, str | None]:
    """(length of the longest valid reverse-topological prefix, reason it stops or None)."""
    comps = _components(g)
    cons = _consumers(g)
    done = set()
    for k, i in enumerate(order):
        if not 0 <= i < len(comps):
            return k, "processed an unknown component"
        if i in done:
            return k, f"processed {comps[i]['kind']} `{comps[i]['name']}` a second time"
        waiting = [comps[j] for j in cons[i] if j not in done]
        if waiting:
            return k, (f"processed {comps[i]['kind']} `{comps[i]['name']}` before its consumer "
                       f"{waiting[0]['kind']} `{waiting[0]['name']}`")
        done.add(i)
    return len(order), None


def _loss_of(g: dict, values: dict, S: set[int], node: str, new: np.ndarray) -> float:
    """The loss of the program made of the components S, with ``node``'s value replaced."""
    vals = dict(values)
    vals[node] = new
    changed = {node}
    for i, n in enumerate(_components(g)):
        if i in S and any(a in changed for a in n["args"]):
            vals[n["name"]] = node_formula(n)(*[vals[a] for a in n["args"]])
            changed.add(n["name"])
    return float(np.sum(vals[g["loss"]]))
