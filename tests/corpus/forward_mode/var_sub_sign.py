"""Var.__sub__: d(a - b)/db recorded as +1."""
EXPECT = {"diagnosis": "tape_local_sign", "component": "Var.__sub__", "test": "tape_sub"}

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def __sub__(self, other):
        o = Var.lift(other)
        return Var(self.value - o.value, [(self, 1.0), (o, 1.0)])
