"""Dual: every operation computes the value and forgets the derivative (dot left at 0)."""
EXPECT = {"diagnosis": "dot_ignored", "component": "Dual.__add__",
          "tests": ["dual_add", "dual_sub", "dual_mul", "dual_div", "dual_pow", "dual_neg", "dual_exp",
                    "dual_log", "dual_sin", "dual_cos", "dual_sigmoid", "dual_tanh"]}

import math

from reference.forward_mode import _sigmoid


class Dual:
    def __init__(self, val, dot=0.0):
        self.val = float(val)
        self.dot = float(dot)

    @staticmethod
    def lift(x):
        return x if isinstance(x, Dual) else Dual(x, 0.0)

    def __add__(self, other):
        return Dual(self.val + Dual.lift(other).val)

    __radd__ = __add__

    def __sub__(self, other):
        return Dual(self.val - Dual.lift(other).val)

    def __rsub__(self, other):
        return Dual(Dual.lift(other).val - self.val)

    def __mul__(self, other):
        return Dual(self.val * Dual.lift(other).val)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return Dual(self.val / Dual.lift(other).val)

    def __rtruediv__(self, other):
        return Dual(Dual.lift(other).val / self.val)

    def __pow__(self, n):
        return Dual(self.val ** n)

    def __neg__(self):
        return Dual(-self.val)

    def exp(self):
        return Dual(math.exp(self.val))

    def log(self):
        return Dual(math.log(self.val))

    def sin(self):
        return Dual(math.sin(self.val))

    def cos(self):
        return Dual(math.cos(self.val))

    def sigmoid(self):
        return Dual(_sigmoid(self.val))

    def tanh(self):
        return Dual(math.tanh(self.val))
