"""Backward with Kahn's algorithm: a component runs once all of its consumers have run.

Ready components are taken from a stack (last found, first processed), so the
order is a valid reverse topological order, not the reverse of creation order.
"""
import numpy as np

from reference.core import components, inputs, params


def operands(c, is_component):
    return [a for a in vars(c).values() if id(a) in is_component]


def Backward(loss):
    for node in components + params + inputs:
        node.grad = np.zeros_like(node.value, dtype=float)
    loss.grad = np.ones_like(loss.value, dtype=float)
    is_component = {id(c): c for c in components}
    waiting = {id(c): 0 for c in components}
    for c in components:
        for a in operands(c, is_component):
            waiting[id(a)] += 1
    ready = [c for c in components if waiting[id(c)] == 0]
    while ready:
        c = ready.pop()
        c.backward()
        for a in operands(c, is_component):
            waiting[id(a)] -= 1
            if waiting[id(a)] == 0:
                ready.append(a)
