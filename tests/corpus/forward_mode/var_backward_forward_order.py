"""Var.backward: walks the topological order from the inputs, not in reverse."""
EXPECT = {"diagnosis": "tape_wrong_order", "component": "Var.backward", "test": "tape_backward"}

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def backward(self):
        order = self.topological_order()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in order:
            for parent, local in node.parents:
                parent.grad += node.grad * local
