"""A failure that comes from an exception still names the component at fault (for reports)."""
from grader.checks import public as P

from .conftest import student_ns

STUB_TANH = '''
class Tanh(CompNode):
    def __init__(self, x):
        super().__init__(); self.x = x
    def forward(self):
        raise NotImplementedError()
    def backward(self):
        raise NotImplementedError()
'''

VDOT_X_GRAD_NOT_TRANSPOSED = '''
class VDot(CompNode):
    def __init__(self, x, W):
        super().__init__(); self.x, self.W = x, W
    def forward(self):
        self.value = self.x.value @ self.W.value
    def backward(self):
        self.x.grad += self.grad @ self.W.value
        self.W.grad += self.x.value.T @ self.grad
'''


def test_missing_class_in_a_graph_names_that_class():
    r = P.check_backward(student_ns(drop=["ReLU"]), "relu_affine", classes=["Add", "Mul", "ReLU"])
    assert r.diagnosis == "missing" and r.details["component"] == "ReLU"


def test_stub_in_a_graph_names_the_stubbed_class():
    r = P.check_backward(student_ns(STUB_TANH), "random:8", classes=["Add", "Mul", "Tanh"])
    assert r.diagnosis == "not_implemented" and r.details["component"] == "Tanh"


def test_matmul_that_raises_in_a_graph_names_vdot():
    r = P.check_backward(student_ns(VDOT_X_GRAD_NOT_TRANSPOSED), "mlp2")
    assert r.diagnosis == "matmul_transposed" and r.details["component"] == "VDot"
