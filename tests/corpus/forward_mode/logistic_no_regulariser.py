"""logistic_ls_grads (scalar_backprop): w_bar from the loss path only; the regulariser's
R_bar * w is forgotten."""
EXPECT = {"diagnosis": "logistic_regulariser", "component": "logistic_ls_grads", "test": "logistic_ls_grads",
          "assignment": "scalar_backprop"}

from reference.forward_mode import sigmoid


def logistic_ls_grads(w, b, x, t, lam):
    z = w * x + b
    y = sigmoid(z)
    L_reg = 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2
    y_bar = y - t
    z_bar = y_bar * y * (1 - y)
    return L_reg, z_bar * x, z_bar
