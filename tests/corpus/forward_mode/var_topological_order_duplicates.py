"""Var.topological_order: a depth-first search without a visited set, so a node reachable
along two paths is listed twice (and its grad passed back twice)."""
EXPECT = {"diagnosis": "tape_order_wrong", "component": "Var.topological_order", "test": "tape_backward"}

from reference.tape import Var as GivenVar


class Var(GivenVar):
    def topological_order(self):
        order = []
        for parent, _ in self.parents:
            order += parent.topological_order()
        return order + [self]
