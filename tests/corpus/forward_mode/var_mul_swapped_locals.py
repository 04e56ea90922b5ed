"""Var.__mul__: records each operand with its own value as the local derivative."""
EXPECT = {"diagnosis": "tape_local_wrong", "component": "Var.__mul__", "test": "tape_mul"}

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def __mul__(self, other):
        o = Var.lift(other)
        return Var(self.value * o.value, [(self, self.value), (o, o.value)])

    __rmul__ = __mul__
