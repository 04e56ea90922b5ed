"""gradient_fwd: seeds every input with dot 1 in each pass, so each entry is the sum of
all partial derivatives."""
EXPECT = {"diagnosis": "ad_seeded_together", "component": "gradient_fwd", "test": "gradient_fwd",
          "score": 0.25}  # right when f returns a plain number (its own case)

import numpy as np

from reference.forward_mode import Dual


def gradient_fwd(f, xs):
    grad = np.zeros(len(xs))
    for i in range(len(xs)):
        out = f(*(Dual(x, 1.0) for x in xs))
        grad[i] = out.dot if isinstance(out, Dual) else 0.0
    return grad
