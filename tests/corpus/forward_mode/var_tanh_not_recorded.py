"""Var.tanh: computes the value but records no parent, "tanh has no operand to pass back to"."""
EXPECT = {"diagnosis": "tape_not_recorded", "component": "Var.tanh", "test": "tape_tanh"}

import math

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def tanh(self):
        return Var(math.tanh(self.value))
