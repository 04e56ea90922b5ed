"""logistic_ls_grads (scalar_backprop): z_bar = y_bar, the sigmoid's derivative skipped."""
EXPECT = {"diagnosis": "logistic_sigmoid_derivative", "component": "logistic_ls_grads",
          "test": "logistic_ls_grads", "assignment": "scalar_backprop"}

from reference.forward_mode import sigmoid


def logistic_ls_grads(w, b, x, t, lam):
    z = w * x + b
    y = sigmoid(z)
    L_reg = 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2
    z_bar = y - t
    return L_reg, z_bar * x + lam * w, z_bar
