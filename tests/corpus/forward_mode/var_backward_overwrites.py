"""Var.backward: "the parent's grad is the child's grad times the local derivative",
written as an assignment, so a node used twice keeps only its last contribution."""
EXPECT = {"diagnosis": "tape_not_accumulated", "component": "Var.backward", "test": "tape_backward"}

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def backward(self):
        order = self.topological_order()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node.parents:
                parent.grad = node.grad * local
