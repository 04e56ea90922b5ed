"""Dual.__add__: "add the other number onto this one", written as an in-place update.

``a + b`` returns ``a`` itself after changing it, so ``a`` is no longer what it was
wherever else it is used (``x * x + x``).
"""
EXPECT = {"diagnosis": "dual_operand_mutated", "component": "Dual.__add__", "test": "dual_add"}

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def __add__(self, other):
        o = Dual.lift(other)
        self.val += o.val
        self.dot += o.dot
        return self

    __radd__ = __add__
