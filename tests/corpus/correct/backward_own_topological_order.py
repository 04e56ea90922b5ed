"""Backward that computes its own topological order by depth-first search over operands.

Operands are found as the component's attributes that are graph nodes. The DFS
starts from the loss (then from any component not reached), so its reverse
post-order is a valid reverse topological order that in general differs from the
reverse of creation order.
"""
import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    nodes = components + params + inputs
    is_node = {id(n) for n in nodes}
    order, seen = [], set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for attr in vars(node).values():
            if id(attr) in is_node:
                visit(attr)
        order.append(node)

    for start in [loss] + components[::-1]:
        visit(start)
    for node in nodes:
        node.grad = np.zeros(np.shape(node.value))
    loss.grad = np.ones(np.shape(loss.value))
    component_ids = {id(c) for c in components}
    for node in reversed(order):
        if id(node) in component_ids:
            node.backward()
