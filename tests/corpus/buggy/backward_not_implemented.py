"""Backward: still the template's stub."""
EXPECT = {"diagnosis": "not_implemented", "component": "Backward"}

import numpy as np

from reference.core import components, inputs, params


def Backward(loss):
    raise NotImplementedError
