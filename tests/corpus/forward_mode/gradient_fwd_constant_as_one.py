"""gradient_fwd: "a plain-number output is the seed itself", so its derivative is 1."""
EXPECT = {"diagnosis": "ad_constant_output", "component": "gradient_fwd", "test": "gradient_fwd",
          "score": 0.75}

import numpy as np

from reference.forward_mode import Dual


def gradient_fwd(f, xs):
    grad = np.zeros(len(xs))
    for i in range(len(xs)):
        out = f(*(Dual(x, 1.0 if j == i else 0.0) for j, x in enumerate(xs)))
        grad[i] = out.dot if isinstance(out, Dual) else 1.0
    return grad
