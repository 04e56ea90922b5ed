"""Var.backward: seeds and sweeps, but never resets the grads, "they start at 0 anyway"."""
EXPECT = {"diagnosis": "tape_not_zeroed", "component": "Var.backward", "test": "tape_backward"}

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def backward(self):
        order = self.topological_order()
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node.parents:
                parent.grad += node.grad * local
