"""Var.backward: left for later (the operators record the tape, nothing walks it)."""
EXPECT = {"diagnosis": "tape_backward_noop", "component": "Var.backward", "test": "tape_backward"}

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def backward(self):
        pass
