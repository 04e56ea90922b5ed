# %% [markdown] id=intro
# # Backpropagation on scalars
#
# A neural network's loss is a long chain of small computations. Backpropagation computes the
# derivative of that loss with respect to *every* number in the chain, at a cost of about one
# more pass over the chain. In this assignment you build the machinery for scalars: a few
# operations that know their own local derivatives, and the loop that combines them into
# gradients. The same machinery, with arrays instead of scalars, trains the networks of the
# later assignments.
#
# **Notation.** $\ell$ is the scalar we differentiate (the loss). For any value $v$ computed
# on the way, $\bar v = \partial \ell / \partial v$ ("v bar") is how much $\ell$ changes per
# unit change of $v$, all later computations being redone.
#
# **What you implement** (each has an autograded test right after it; the visible part of a
# test runs when you run its cell, more cases are checked when your notebook is graded):
#
# | task | what | points |
# |---|---|---|
# | 1 | `Add.forward`, `Add.backward` | {{points_n:add}} |
# | 2 | `Mul.forward`, `Mul.backward` | {{points_n:mul}} |
# | 3 | `Square.forward`, `Square.backward` | {{points_n:square}} |
# | 4 | `Sigmoid.forward`, `Sigmoid.backward` | {{points_n:sigmoid}} |
# | 5 | `ReLU.forward`, `ReLU.backward` | {{points_n:relu}} |
# | 6 | `Backward(loss)` | {{points_n:backward}} |
# | 7 | `logistic_ls_grads` (by hand, in bar notation) | {{points_n:logistic_ls_grads}} |
#
# Replace each `raise NotImplementedError()` with your code. Do not rename the classes or
# functions, and do not edit the locked cells: the grader uses them as they are.

# %% [given] id=imports
import math

import numpy as np

# %% [markdown] id=graphs
# ## 1. Computation graphs
#
# Write a computation as a sequence of assignments, each applying one simple operation to
# values that already exist. Each value is a **node**; an arrow $a \to v$ says that $a$ was
# an argument of the operation that produced $v$. Inputs and parameters have no incoming
# arrows; the loss has no outgoing ones. Because every operation only uses values computed
# before it, listing the assignments in the order they were executed gives a **topological
# order**: every arrow points forward in the list.
#
# **Example.** The hidden unit $H = \max(0,\; W x + b)$ with $W = 2$, $x = 3$, $b = 1$ is the
# program
#
# $$u_1 = W \cdot x = 6, \qquad u_2 = u_1 + b = 7, \qquad H = \mathrm{ReLU}(u_2) = 7 .$$
#
# To get $\partial H / \partial$ everything, walk the list backwards, starting from
# $\bar H = 1$ (the output changes one-for-one with itself):
#
# * $H = \mathrm{ReLU}(u_2)$ and $u_2 = 7 > 0$, so the ReLU passes the change through:
#   $\bar u_2 = \bar H \cdot 1 = 1$.
# * $u_2 = u_1 + b$: a sum passes its bar unchanged to both arguments, $\bar u_1 = 1$ and
#   $\bar b = 1$.
# * $u_1 = W \cdot x$: each factor receives the bar times the *other* factor,
#   $\bar W = \bar u_1 \cdot x = 3$ and $\bar x = \bar u_1 \cdot W = 2$.
#
# Every step used only local information: the node's own bar, the local derivative of one
# operation, and values saved from the forward pass.
#
# ## 2. The chain rule when a value has several consumers
#
# A value can feed more than one later operation. Take $y = x(x + 1)$, written as
#
# $$u = x + 1, \qquad y = x \cdot u .$$
#
# Now $x$ influences $y$ along two paths: directly as a factor of the product, and through
# $u$. The multivariate chain rule says the effects **add up**:
#
# $$\bar x = \underbrace{\bar y \,\frac{\partial y}{\partial x}}_{\text{direct path}}
#          + \underbrace{\bar u \,\frac{\partial u}{\partial x}}_{\text{through } u} .$$
#
# At $x = 17$: the forward pass gives $u = 18$ and $y = 306$. Backwards from $\bar y = 1$,
# the product gives $\bar u = \bar y \cdot x = 17$ and a first contribution
# $\bar y \cdot u = 18$ to $\bar x$; the sum then adds its contribution
# $\bar u \cdot 1 = 17$, so $\bar x = 18 + 17 = 35$. Check: $\frac{d}{dx}(x^2 + x) = 2x + 1 = 35$.
#
# In general, in bar notation,
#
# $$\bar v = \sum_{c \text{ consumes } v} \bar c \, \frac{\partial c}{\partial v},$$
#
# and $\bar v$ is complete only once every consumer $c$ of $v$ has contributed. Processing
# the nodes in *reverse* topological order guarantees exactly that: all consumers of $v$ come
# after $v$ in the forward order, so they come before it in the backward walk.
#
# ## 3. EDF: the framework you complete
#
# EDF keeps a computation graph in three module-level lists:
#
# * `inputs`: leaves whose value the caller sets (`Input`), e.g. data;
# * `params`: trainable leaves (`Parameter`), updated by `SGD`;
# * `components`: the operations (`CompNode` subclasses), in the order they were created,
#   which is a topological order because a component can only be built from existing nodes.
#
# Every node has a `.value` and, after a backward pass, a `.grad` holding $\bar v$. Values are
# NumPy arrays; in this assignment they are 0-dimensional arrays (scalars), but nothing you
# write should depend on that more than necessary.

# %% [given] from=reference.core#graph_lists reference.core:clear_compgraph

# %% [markdown] id=helpers-note
# Two small helpers fix the dtype of values and gradients. `unbroadcast(grad, shape)` brings a
# gradient back to the shape of its operand; with scalars nothing is ever broadcast, so here it
# only checks that the shapes already agree. Using it in `Add` and `Mul` lets them work on
# arrays later, once the tensor assignment has you write the version that sums over broadcast
# axes.

# %% [given] from=reference.core:as_float_array,zeros_like_grad

# %% [given] id=scalar-unbroadcast
def unbroadcast(grad, shape):
    """The gradient of an operand of ``shape``: scalars are never broadcast, so ``grad``
    must already have that shape (the tensor assignment sums over broadcast axes)."""
    grad = np.asarray(grad)
    if grad.shape != tuple(shape):
        raise ValueError(f"unbroadcast: a gradient of shape {grad.shape} for an operand of shape "
                         f"{tuple(shape)}; in this assignment every value is a scalar (a 0-d array)")
    return grad

# %% [given] from=reference.core:Input,Parameter,CompNode

# %% [markdown] id=forward-sgd-note
# `Forward` runs every component's `forward()` in creation order; `SGD` takes one gradient
# step on every parameter. Both are given; `Backward`, their mirror image, is your task 6.

# %% [given] from=reference.core:Forward,SGD

# %% [markdown] id=components-intro
# ## 4. Components
#
# A component is built from its operand nodes, e.g. `Mul(a, b)`; its constructor (given)
# stores the operands and registers the component in `components`. You write two methods:
#
# * `forward()` reads the operands' `.value` and sets `self.value`;
# * `backward()` adds this component's contribution to each operand's `.grad`, namely
#   `self.grad` (the component's own bar, $\bar v$) times the local derivative
#   $\partial v / \partial \text{operand}$.
#
# Two rules make the multi-path chain rule come out right:
#
# 1. **Accumulate with `+=`, never assign.** An operand used by several components receives
#    one contribution from each; assigning would overwrite the others.
# 2. **Use `self.grad`; never assume it is 1.** The component is usually not the loss, and
#    its bar is whatever its consumers accumulated.
#
# The docstring of each class states its local rule in bar notation ($v$ is the component's
# value). The test after each class builds the component on random 0-d operands, compares
# `forward()` with the formula and `backward()` with numerical derivatives for a random
# upstream gradient (never 1), and checks that you accumulate (the operands' grads already
# hold random values). Where the derivative depends on the region of the input, one test case
# runs the component on one input per region and passes only if all of them are right: a
# negative and a positive input (near and far from 0) for ReLU; both tails and both sides of
# the middle for Sigmoid.

# %% [solution] from=reference.operations:Add keep=__init__

# %% [test] id=add

# %% [solution] from=reference.operations:Mul keep=__init__

# %% [test] id=mul

# %% [solution] from=reference.operations:Square keep=__init__

# %% [test] id=square

# %% [markdown] id=sigmoid-note
# The logistic sigmoid $\sigma(x) = 1 / (1 + e^{-x})$ has the convenient derivative
# $\sigma'(x) = \sigma(x)\,(1 - \sigma(x))$: the backward pass can reuse the value computed in
# the forward pass. The helper `sigmoid` below evaluates $\sigma$ of a scalar without
# overflowing for large $|x|$; use it in `Sigmoid.forward`. The test also runs your forward on
# inputs of $\pm 1000$, where the plain formula's `np.exp(-x)` overflows (for $x = -1000$): an
# overflow there fails the case.

# %% [given] id=scalar-sigmoid
def sigmoid(x):
    """sigma(x) = 1 / (1 + exp(-x)) of a scalar, as a 0-d array; exp only of -|x|, never overflowing."""
    x = float(x)
    if x >= 0:
        return np.asarray(1.0 / (1.0 + math.exp(-x)))
    return np.asarray(math.exp(x) / (1.0 + math.exp(x)))

# %% [solution] from=reference.operations:Sigmoid keep=__init__

# %% [test] id=sigmoid

# %% [markdown] id=relu-note
# $\mathrm{ReLU}(x) = \max(0, x)$ is not differentiable at $0$; like most frameworks we use
# the derivative $0$ there. The tests stay at least 0.1 away from the kink, and every case runs
# your ReLU on four inputs: one below $-1$, one in $(-1, 0)$, one in $(0, 1)$ and one above $1$.

# %% [solution] from=reference.operations:ReLU keep=__init__

# %% [test] id=relu

# %% [markdown] id=backward-intro
# ## 5. The backward pass
#
# `Backward(loss)` computes $\partial\,\mathrm{loss} / \partial v$ for every node $v$, storing it
# in `v.grad`:
#
# 1. **zero**: give every node (components, parameters and inputs) a `.grad` of zeros with the
#    shape of its `.value` (the helper `zeros_like_grad` does this);
# 2. **seed**: set `loss.grad` to ones ($\overline{\mathrm{loss}} = 1$);
# 3. **propagate**: call `backward()` on every component, in the reverse of the order in which
#    they were created.
#
# **Loop invariant.** Think of the backward loop as growing a set $S$ of processed components,
# taken from the end of `components`. After each step, for every node $v$:
#
# > `v.grad` equals $\partial\,\mathrm{loss} / \partial v$ **for the program made of the
# > components in $S$ only** (the other components' outputs held fixed).
#
# Before the first step $S$ is empty: `loss.grad` is 1 and everything else is 0, which is
# right for the empty program. When $S$ is all of `components`, the invariant says every
# grad is the full derivative, which is what we want. And one `backward()` call keeps the
# invariant true exactly when it adds the right contribution to each operand.
#
# On $y = x(x+1)$ at $x = 17$ (components `u = Add(x, one)` then `y = Mul(x, u)`):
#
# | after processing | `y.grad` | `u.grad` | `x.grad` |
# |---|---|---|---|
# | nothing (zeroed and seeded) | 1 | 0 | 0 |
# | `y` | 1 | 17 | 18 |
# | `y`, `u` | 1 | 17 | 35 |
#
# The test for this task records the grads after every reverse step and checks the
# invariant, so if it fails it tells you at which step the gradients went wrong. It grades
# your `Backward` alone: its graphs are made of the grader's own test components, affine maps
# $v = c_0 + c_1 a$ and $v = c_0 + c_1 a + c_2 b$ with random coefficients (subclasses of your
# `CompNode`, so they register in `components`), whose `backward()` is known to be right. Your
# `Add`, `Mul`, ... are graded by their own tests and not again here. Each graph has two
# `Input`s and two `Parameter`s, nodes with several consumers (one consumed twice by the same
# component), and stale grads left from an earlier pass; `Backward` is called twice in a row.
# The visible part runs one graph of 4 such components (plus the components that join their
# outputs into one loss), more are checked when your notebook is graded.

# %% [solution] from=reference.core:Backward

# %% [markdown] id=backward-try
# Try it on the example above (this cell is not graded):

# %% [code] id=try-x-times-x-plus-1
clear_compgraph()
x = Input(17.0)
one = Input(1.0)
u = Add(x, one)
y = Mul(x, u)
Forward()
Backward(y)
print("y =", y.value, " u.grad =", u.grad, " x.grad =", x.grad)

# %% [test] id=backward

# %% [markdown] id=by-hand-intro
# ## 6. Backpropagation by hand: regularized logistic least squares
#
# Bar notation is also the cleanest way to derive gradients on paper. For one example
# $(x, t)$, a weight $w$ and a bias $b$, the forward pass is
#
# $$z = w x + b, \quad y = \sigma(z), \quad \mathcal{L} = \tfrac12 (y - t)^2, \quad
#   \mathcal{R} = \tfrac12 w^2, \quad \mathcal{L}_{\mathrm{reg}} = \mathcal{L} + \lambda \mathcal{R}.$$
#
# The backward pass visits the same quantities in reverse order, each bar computed from the
# bars of its consumers:
#
# * $\overline{\mathcal{L}_{\mathrm{reg}}} = 1$;
# * $\mathcal{L}_{\mathrm{reg}}$ consumes $\mathcal{R}$ with factor $\lambda$, so
#   $\overline{\mathcal{R}} = \lambda\,\overline{\mathcal{L}_{\mathrm{reg}}}$, and it consumes
#   $\mathcal{L}$ with factor 1, so $\overline{\mathcal{L}} = \overline{\mathcal{L}_{\mathrm{reg}}}$;
# * continue with $\bar y$ (from $\mathcal{L}$), $\bar z$ (from $y$, using $\sigma'$), and
#   finally $\bar b$ and $\bar w$.
#
# Careful with $\bar w$: $w$ has **two** consumers, $z$ and $\mathcal{R}$, so $\bar w$ is a
# sum of two terms. Compute $\bar z$ once and reuse it for both $\bar w$ and $\bar b$: that
# reuse is what makes backpropagation cheap.
#
# Implement `logistic_ls_grads` so that it computes the forward pass and then the bars, one
# line per bar, and returns `(L_reg, w_bar, b_bar)`. Use the `sigmoid` helper from above.

# %% [solution] from=reference.by_hand:logistic_ls_grads

# %% [markdown] id=by-hand-check
# A quick self-check with central differences (not graded):

# %% [code] id=try-by-hand
w0, b0, x0, t0, lam0, h = 0.7, -0.2, 1.5, 1.0, 0.1, 1e-6
loss_at = lambda w, b: logistic_ls_grads(w, b, x0, t0, lam0)[0]
L_reg, w_bar, b_bar = logistic_ls_grads(w0, b0, x0, t0, lam0)
print("w_bar", w_bar, "numeric", (loss_at(w0 + h, b0) - loss_at(w0 - h, b0)) / (2 * h))
print("b_bar", b_bar, "numeric", (loss_at(w0, b0 + h) - loss_at(w0, b0 - h)) / (2 * h))

# %% [markdown] id=by-hand-test-note
# **The test** compares `L_reg`, `w_bar` and `b_bar` with the formulas above: visibly for
# $w = 0.5$, $b = -0.3$, $x = 1.2$, $t = 1$, $\lambda = 0.1$; when graded, for three more
# examples with $z$ of both signs and targets $t$ strictly between 0 and 1.

# %% [test] id=logistic_ls_grads
