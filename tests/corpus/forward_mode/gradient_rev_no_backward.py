"""gradient_rev: runs f on Vars and reads the grads, forgetting to call backward()."""
EXPECT = {"diagnosis": "ad_not_seeded", "component": "gradient_rev", "test": "gradient_rev",
          "score": 0.25}  # right when f returns a plain number (its own case)

import numpy as np

from reference.tape import Var


def gradient_rev(f, xs):
    vs = [Var(x) for x in xs]
    f(*vs)
    return np.array([v.grad for v in vs])
