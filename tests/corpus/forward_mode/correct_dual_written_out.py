"""A correct Dual written differently: every reflected operator spelled out, the quotient
rule as u'/v - u v'/v^2, powers with an integer exponent by repeated products."""

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
        o = Dual.lift(other)
        return Dual(self.val + o.val, self.dot + o.dot)

    def __radd__(self, other):
        return Dual(other + self.val, self.dot)

    def __sub__(self, other):
        o = Dual.lift(other)
        return Dual(self.val - o.val, self.dot - o.dot)

    def __rsub__(self, other):
        return Dual(other - self.val, -self.dot)

    def __mul__(self, other):
        o = Dual.lift(other)
        return Dual(self.val * o.val, self.val * o.dot + o.val * self.dot)

    def __rmul__(self, other):
        return Dual(other * self.val, other * self.dot)

    def __truediv__(self, other):
        o = Dual.lift(other)
        return Dual(self.val / o.val, self.dot / o.val - self.val * o.dot / (o.val * o.val))

    def __rtruediv__(self, other):
        return Dual(other / self.val, -other * self.dot / (self.val * self.val))

    def __pow__(self, n):
        if float(n).is_integer() and n > 0:
            out = Dual(1.0)
            for _ in range(int(n)):
                out = out * self
            return out
        return Dual(self.val ** n, n * self.val ** (n - 1) * self.dot)

    def __neg__(self):
        return Dual(-self.val, -self.dot)

    def exp(self):
        return Dual(math.exp(self.val), math.exp(self.val) * self.dot)

    def log(self):
        return Dual(math.log(self.val), self.dot / self.val)

    def sin(self):
        return Dual(math.sin(self.val), self.dot * math.cos(self.val))

    def cos(self):
        return Dual(math.cos(self.val), -self.dot * math.sin(self.val))

    def sigmoid(self):
        s = _sigmoid(self.val)
        return Dual(s, self.dot * s - self.dot * s * s)

    def tanh(self):
        return Dual(math.tanh(self.val), self.dot / math.cosh(self.val) ** 2)
