"""Dual.__rsub__: "the reflected version is the same subtraction", so ``2 - d`` computes d - 2."""
EXPECT = {"diagnosis": "reflected_reversed", "component": "Dual.__rsub__", "test": "dual_sub"}

from reference.forward_mode import Dual as GivenDual


class Dual(GivenDual):
    def __rsub__(self, other):
        return self - Dual.lift(other)
