"""Hand-written bugs, one or two per diagnosis: the checks name the component and the bug.

The broad mutation corpus lives in tests/corpus (test_corpus.py); these are the
checks' own unit cases, each run through the public (numeric) and hidden (reference) path.
"""
from __future__ import annotations

import inspect

import pytest

import reference

from grader.checks import hidden, public as P

from .conftest import student_ns

HEADER = "from reference.core import CompNode, unbroadcast\n"


def component(ns, name, shapes=None):
    pub = P.check_component(ns, name, shapes=shapes, seed=1)
    test = {"id": name, "check": "component", "target": name, "hidden": {"seeds": [11], "shapes": shapes}}
    hid = hidden.run_hidden(ns, test)
    return pub, hid


def backward(ns, graph):
    pub = P.check_backward(ns, graph, seed=2)
    test = {"id": "b", "check": "backward_loop", "target": "Backward", "hidden": {"seeds": [5], "graphs": [graph]}}
    return pub, hidden.run_hidden(ns, test)


COMPONENT_BUGS = [
    ("upstream_ignored", "Mul", None, '''
class Mul(CompNode):
    def __init__(self, a, b):
        super().__init__(); self.a, self.b = a, b
    def forward(self):
        self.value = self.a.value * self.b.value
    def backward(self):
        self.a.grad += unbroadcast(self.b.value * np.ones_like(self.value), self.a.value.shape)
        self.b.grad += unbroadcast(self.a.value * np.ones_like(self.value), self.b.value.shape)
'''),
    ("sign_error", "Exp", None, '''
class Exp(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.exp(self.x.value)
    def backward(self):
        self.x.grad -= self.grad * self.value
'''),
    ("wrong_factor", "Mean", None, '''
class Mean(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.asarray(np.mean(self.x.value))
    def backward(self):
        self.x.grad += self.grad * np.ones_like(self.x.value)
'''),
    ("matmul_transposed", "VDot", [[(4, 4), (4, 4)]], '''
class VDot(CompNode):
    def __init__(self, x, W):
        super().__init__(); self.x, self.W = x, W
    def forward(self):
        self.value = self.x.value @ self.W.value
    def backward(self):
        self.x.grad += self.grad @ self.W.value.T
        self.W.grad += self.grad.T @ self.x.value
'''),
    ("bias_not_summed", "Add", [[(4, 3), (3,)]], '''
class Add(CompNode):
    def __init__(self, a, b):
        super().__init__(); self.a, self.b = a, b
    def forward(self):
        self.value = self.a.value + self.b.value
    def backward(self):
        self.a.grad = self.a.grad + self.grad
        self.b.grad = self.b.grad + self.grad
'''),
    ("assign_not_accumulate", "Square", None, '''
class Square(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = self.x.value ** 2
    def backward(self):
        self.x.grad = self.grad * 2 * self.x.value
'''),
    ("operand_mutated", "ReLU", None, '''
class ReLU(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.maximum(self.x.value, 0, out=self.x.value)
    def backward(self):
        self.x.grad += self.grad * (self.x.value > 0)
'''),
    ("non_finite", "Sigmoid", None, '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.exp(self.x.value) / (1 + np.exp(self.x.value))
    def backward(self):
        self.x.grad += self.grad * self.value * (1 - self.value)
'''),
    ("forward_wrong", "Tanh", None, '''
class Tanh(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.tanh(self.x.value) * 0.5
    def backward(self):
        self.x.grad += self.grad * (1 - np.tanh(self.x.value) ** 2)
'''),
    ("not_implemented", "Log", None, '''
class Log(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.log(self.x.value)
    def backward(self):
        raise NotImplementedError
'''),
    ("exception", "Sum", None, '''
class Sum(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.asarray(np.sum(self.x.value))
    def backward(self):
        self.x.grad += self.grads
'''),
    ("grad_shape", "MSE", None, '''
class MSE(CompNode):
    def __init__(self, y, t):
        super().__init__(); self.y, self.t = y, t
    def forward(self):
        self.value = np.asarray(0.5 * np.mean((self.y.value - self.t.value) ** 2))
    def backward(self):
        d = (self.y.value - self.t.value) / self.y.value.size * self.grad
        self.y.grad = self.y.grad + d[None]
        self.t.grad = self.t.grad - d[None]
'''),
]


@pytest.mark.parametrize("code,name,shapes,source", COMPONENT_BUGS, ids=[b[0] for b in COMPONENT_BUGS])
def test_component_bug_is_named(code, name, shapes, source):
    ns = student_ns(HEADER + source)
    for r in component(ns, name, shapes):
        assert not r.passed and r.diagnosis == code, r.message
        assert r.message.startswith(name) and 0 <= r.score < 1
        assert "seed" not in r.message.lower()


def test_missing_class():
    ns = student_ns(drop=["ReLU"])
    for r in component(ns, "ReLU"):
        assert r.diagnosis == "missing" and "ReLU" in r.message


def test_assign_in_graph_names_step_component_and_node():
    ns = student_ns(HEADER + '''
class Sigmoid(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = 1 / (1 + np.exp(-self.x.value))
    def backward(self):
        self.x.grad = self.grad * self.value * (1 - self.value)
''')
    for r in backward(ns, "shared_subexpr"):
        assert r.diagnosis == "assign_not_accumulate"
        assert "Sigmoid.backward: `x`.grad was overwritten" in r.message and "+=" in r.message
        d = r.details
        assert d["component"] == "Sigmoid" and d["node"] == "x" and d["position"] == 0
        assert d["step"] == 7  # the last of 7 reverse steps: Sum, m, e, d, c, b, a
        assert d["graph"]["broken"] == "a" and d["graph"]["bad_node"] == "x"
        assert d["graph"]["processed"] == ["loss", "m", "e", "d", "c", "b"]
        assert d["max_abs_err"] > 0 and "worst_index" in d


BACKWARD_BUGS = [
    ("loss_not_seeded", '''
def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    for c in reversed(components):
        c.backward()
'''),
    ("wrong_order", '''
def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in components:
        c.backward()
'''),
    ("grads_not_zeroed", '''
def Backward(loss):
    for node in components:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        c.backward()
'''),
    ("grads_not_zeroed", '''
def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        if c is not loss:
            c.grad = np.zeros_like(c.value, dtype=float)
        c.backward()
'''),
    ("not_implemented", '''
def Backward(loss):
    raise NotImplementedError
'''),
]


@pytest.mark.parametrize("code,source", BACKWARD_BUGS, ids=[f"{b[0]}{i}" for i, b in enumerate(BACKWARD_BUGS)])
@pytest.mark.parametrize("graph", ["x_times_x_plus_1", "mlp2", "random:8"])
def test_backward_bug_is_named(code, source, graph):
    ns = student_ns(source)
    for r in backward(ns, graph):
        assert not r.passed and r.diagnosis == code, r.message
        assert r.message.startswith("Backward")


def test_stale_grads_across_calls():
    """Backward zeroes only the first time: the second call accumulates on the first."""
    ns = student_ns('''
def Backward(loss):
    for node in components + params + inputs:
        if not hasattr(node, "zeroed"):
            node.grad = np.zeros_like(node.value, dtype=float)
            node.zeroed = True
    loss.grad = np.ones_like(loss.value, dtype=float)
    for c in reversed(components):
        c.backward()
''')
    for r in backward(ns, "relu_affine"):
        assert r.diagnosis == "grads_not_zeroed" and "second call" in r.message


def test_subclasses_are_wrapped_once():
    """Mean subclassing Sum and calling super().backward(): one step per component."""
    ns = student_ns(HEADER + '''
class Sum(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        self.value = np.asarray(np.sum(self.x.value))
    def backward(self):
        self.x.grad += self.grad * self.scale() * np.ones_like(self.x.value)
    def scale(self):
        return 1.0

class Mean(Sum):
    def forward(self):
        self.value = np.asarray(np.mean(self.x.value))
    def backward(self):
        super().backward()
    def scale(self):
        return 1.0 / self.x.value.size
''')
    for graph in ("shared_subexpr", "random:10"):
        spec = P.graph_spec(graph, 0, ("Add", "Mul", "Square", "Sigmoid", "Mean"))
        rec = P.probe(ns, spec)
        assert len(rec["steps"]) == len(P._components(spec))
        for r in backward(ns, graph):
            assert r.passed, r.message
    assert P.check_component(ns, "Mean").passed and P.check_component(ns, "Sum").passed
    import reference
    assert "backward" in vars(reference.Sum) and vars(reference.Sum)["backward"].__name__ == "backward"
    assert vars(ns["Sum"])["backward"].__qualname__ == "Sum.backward"  # restored


def _tape_mutant(old, new):
    """The reference tape with one line changed, as a student's notebook cell."""
    src = inspect.getsource(reference.tape).replace("from .forward_mode import", "from reference.forward_mode import")
    assert old in src
    return src.replace(old, new)


TAPE_NOT_ZEROED = _tape_mutant("            node.grad = 0.0\n", "            pass\n")

FUNCTION_BUGS = [
    ("dual", "product_rule_term", '''
class Dual(Dual):
    def __mul__(self, other):
        o = Dual.lift(other)
        return Dual(self.val * o.val, self.dot * o.val)
    __rmul__ = __mul__
'''),
    ("dual", "dot_sign_error", '''
class Dual(Dual):
    def __rsub__(self, other):
        return Dual(other - self.val, self.dot)
'''),
    ("tape", "tape_not_zeroed", TAPE_NOT_ZEROED),
]


@pytest.mark.parametrize("kind,code,source", FUNCTION_BUGS, ids=[b[1] for b in FUNCTION_BUGS])
def test_ad_mode_bugs(kind, code, source):
    ns = student_ns(source)
    if kind == "dual":
        pub = P.check_dual(ns, seed=0)
        hid = hidden.run_hidden(ns, {"id": "d", "check": "dual", "target": "Dual", "hidden": {"seed": 4}})
    else:
        pub = P.check_tape(ns, seed=0)
        hid = hidden.run_hidden(ns, {"id": "t", "check": "tape", "target": "Var", "hidden": {"seed": 4}})
    for r in (pub, hid):
        assert r.diagnosis == code, r.message
        assert 0 <= r.score < 1


def test_logistic_by_hand_bugs():
    ns = student_ns('''
def logistic_ls_grads(w, b, x, t, lam):
    z = w * x + b
    y = sigmoid(z)
    L_reg = 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2
    z_bar = (y - t) * y * (1 - y)
    return L_reg, z_bar * x, z_bar          # forgot the regulariser in w_bar
''')
    pub = P.check_function(ns, "logistic_ls_grads", seed=0)
    assert pub.diagnosis == "logistic_regulariser" and "w_bar" in pub.message
    ns = student_ns('''
def derivative(f, x):
    return f(Dual(x, 1.0)).val
''')
    r = P.check_function(ns, "derivative", cases=[{"f": "lambda x: sin(x) * x", "x": 0.7}])
    assert not r.passed
