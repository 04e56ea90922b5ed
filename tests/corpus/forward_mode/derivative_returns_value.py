"""derivative: reads the result's val, "the result of f at x", instead of its dot."""
EXPECT = {"diagnosis": "ad_returned_value", "component": "derivative", "test": "derivative",
          "score": 0.25}  # right when f returns a plain number (its own case)

from reference.forward_mode import Dual


def derivative(f, x):
    out = f(Dual(x, 1.0))
    return out.val if isinstance(out, Dual) else 0.0
