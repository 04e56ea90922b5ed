"""The course notes' worked examples (docs/api-contract.md), as the probe records them step by step."""
from __future__ import annotations


import reference
from grader.checks import hidden, public as P


def test_x_times_x_plus_1_steps():
    spec = P.graph_spec("x_times_x_plus_1")
    rec = P.probe(reference, spec)
    assert [s["component"] for s in rec["steps"]] == [1, 0]  # y, then u
    assert rec["pre"]["y"] == 1 and rec["pre"]["x"] == 0 and rec["pre"]["u"] == 0
    step1, step2 = (s["grads"] for s in rec["steps"])
    assert step1["u"] == 17 and step1["x"] == 18
    assert step2["x"] == 35
    assert P.check_backward(reference, "x_times_x_plus_1").passed
    test = {"id": "b", "check": "backward_loop", "target": "Backward", "hidden": {"graphs": ["x_times_x_plus_1"]}}
    assert hidden.run_hidden(reference, test).passed


def test_relu_affine_values():
    spec = P.graph_spec("relu_affine")
    rec = P.probe(reference, spec)
    assert rec["values"]["y"] == 7
    final = rec["final"]
    assert (final["W"], final["x"], final["b"]) == (3, 2, 1)


def test_any_valid_reverse_order_is_accepted():
    """A Backward with its own topological order (FIFO Kahn, not reversed creation) passes."""
    from .conftest import student_ns
    ns = student_ns('''
def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros(np.shape(node.value))
    loss.grad = np.ones(np.shape(loss.value))
    ids = {id(c) for c in components}
    ops = {id(c): [a for a in vars(c).values() if id(a) in ids] for c in components}
    waiting = {id(c): 0 for c in components}
    for c in components:
        for a in ops[id(c)]:
            waiting[id(a)] += 1
    ready = [c for c in components if waiting[id(c)] == 0]
    while ready:
        c = ready.pop(0)
        c.backward()
        for a in ops[id(c)]:
            waiting[id(a)] -= 1
            if waiting[id(a)] == 0:
                ready.append(a)
''')
    different = 0
    for seed in range(10):
        for graph in ("shared_subexpr", "mlp2", "random:10"):
            order = P.record_order(P.probe(ns, P.graph_spec(graph, seed)))
            different += order != sorted(order, reverse=True)
            assert P.check_backward(ns, graph, seed=seed).passed
    assert different > 0
