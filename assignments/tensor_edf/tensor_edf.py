# %% [markdown] id=intro
# # EDF with tensors
#
# In the scalar assignment every node of the computation graph held one number. Real networks
# push whole arrays through the graph: a minibatch of inputs of shape `(N, I)`, a weight matrix
# `(I, O)`, a bias `(O,)`, logits `(N, C)`. In this assignment you write the EDF components for
# tensor values, so that the next assignment can train a multilayer perceptron with them.
#
# The machinery is unchanged:
#
# - every component appends itself to `components` when it is created, so `components` is
#   always in a topological order;
# - `Forward()` calls `forward()` on every component in that order; `forward()` sets
#   `self.value` from the operands' values;
# - `Backward(loss)` sets every `grad` to zeros of its value's shape, sets `loss.grad` to ones
#   (the seed, $\bar\ell = 1$), and calls `backward()` on every component in **reverse** order;
#   `backward()` adds this component's contribution to each operand's `grad` with `+=`, using
#   `self.grad` (which is $\bar v$ for this component's value $v$; never assume it is ones);
# - `SGD(eta)` moves every parameter against its gradient.
#
# As before, $\bar v = \partial \ell / \partial v$ is the derivative of the scalar loss $\ell$
# with respect to a value $v$. When $v$ is an array, $\bar v$ is an array **of the same shape**:
# entry by entry, $\bar v[j] = \partial \ell / \partial v[j]$. That is the first thing every test
# checks.
#
# **What you implement** (each has an autograded test right after it):
#
# | task | what | points |
# |---|---|---|
# | 1 | `unbroadcast(grad, shape)` | {{points_n:unbroadcast}} |
# | 2 | `Add`, `Mul` (with broadcasting) | {{points_n:add}} + {{points_n:mul}} |
# | 3 | `Exp`, `Log`, `Tanh`, `ReLU` | {{points_n:exp}} + {{points_n:log}} + {{points_n:tanh}} + {{points_n:relu}} |
# | 4 | `Sigmoid`, numerically stable | {{points_n:sigmoid}} |
# | 5 | `VDot` | {{points_n:vdot}} |
# | 6 | `Sum`, `Mean` | {{points_n:sum}} + {{points_n:mean}} |
# | 7 | `SoftmaxCrossEntropy`, numerically stable | {{points_n:softmax_cross_entropy}} |
# | 8 | `MSE` | {{points_n:mse}} |
# | 9 | everything together: `Backward` through a two-layer perceptron (a diagnostic) | {{points_n:backward_mlp2}} |
#
# Replace each `raise NotImplementedError()` with your code. Do not rename the classes or
# functions, and do not edit the locked cells: the grader uses them as they are. The visible
# part of a test runs when you run its cell; more cases are checked when your notebook is
# graded.
#
# Every test case draws its inputs so that each regime of the component shows: ReLU inputs of
# both signs (at least 0.1 from the kink) in every case, Sigmoid and Tanh inputs in both tails
# and on both sides of the middle, upstream gradients that are never ones, and operand grads
# that already hold values (so `=` instead of `+=` always shows). A case with a 0-d operand
# runs the component once per regime and passes only if every run does. Sigmoid, Tanh, Log and
# `SoftmaxCrossEntropy` also get a case with large inputs (values in the thousands, or
# $10^{\pm 300}$ for Log), run with NumPy's overflow warnings turned into errors: an overflow
# fails that case, even if the final value is finite. Compute in float64 (NumPy's default):
# float32 values fail with their own message.

# %% [given] id=imports
import numpy as np

# %% [markdown] id=core-note
# ## The EDF core (given)
#
# Read this cell before you start: it is the whole framework. Note how `Backward` zeroes the
# gradients of components, parameters **and** inputs (an input may be used by several
# components), and how `zeros_like_grad` makes every gradient a float array of its value's shape.

# %% [given] id=edf-core from=reference.core#graph_lists reference.core:clear_compgraph,as_float_array,zeros_like_grad,Input,Parameter,CompNode,Forward,Backward,SGD

# %% [markdown] id=contractions
# ## Jacobians as contractions
#
# Take one component $v = g(x)$ with a tensor operand $x$. Each entry $x[k]$ can influence the
# loss only through the entries $v[j]$, so the chain rule reads
#
# $$\bar x[k] \mathrel{+}= \sum_{j} \bar v[j]\; \frac{\partial v[j]}{\partial x[k]} .$$
#
# Here $j$ and $k$ are *multi-indices*: if $v$ has shape `(N, O)` then $j$ runs over all pairs
# $(n, o)$. The array $\partial v[j] / \partial x[k]$ is the Jacobian of the component; it
# carries the indices of $v$ followed by the indices of $x$. The update above contracts (sums
# over) the value indices $j$, leaving an array with the indices of $x$: exactly the shape
# that $\bar x$ must have.
#
# You will **never** build the Jacobian as an array: it has `v.size * x.size` entries, most of
# them zero. Instead, for each component you work out the sum above on paper and write down
# the much cheaper array expression it collapses to:
#
# - **Elementwise** components ($v[j] = f(x[j])$): the Jacobian is zero unless $j = k$, so the
#   sum has one term and $\bar x \mathrel{+}= \bar v \odot f'(x)$, an elementwise product.
#   In NumPy, `self.x.grad += self.grad * fprime`.
# - **Reductions** (sum, mean): every $v$ depends on every $x[k]$ with the same weight.
# - **Matrix products**: the sum becomes another matrix product (task 5).
#
# Here is one complete component to model yours on. For $v = x^2$ elementwise,
# $\partial v[j] / \partial x[k] = 2x[k]$ when $j = k$ and $0$ otherwise, so
# $\bar x \mathrel{+}= \bar v \odot 2x$.

# %% [given] from=reference.operations:Square

# %% [markdown] id=components-rules
# In each class below, `__init__` is given: it registers the component and stores its operands
# (`self.x`, or `self.a` and `self.b`, ...). You write `forward()` and `backward()`.
# Two rules apply to all of them:
#
# - never change an operand's `value` (no in-place operations on it such as `x.value -= m`);
#   compute into new arrays;
# - in `backward()`, always `+=` into the operand's `grad`: another component may already have
#   put its own contribution there.
#
# ## Task 1 ({{points:unbroadcast}}): broadcasting and `unbroadcast`
#
# NumPy lets us add arrays of different shapes by *broadcasting*: in `u + b` with `u` of shape
# `(N, O)` and the bias `b` of shape `(O,)`, the bias is (virtually) copied to every one of the
# $N$ rows. Written out, $v[n, o] = u[n, o] + b[o]$: the single entry $b[o]$ is used by $N$
# entries of $v$, so by the contraction rule
#
# $$\bar b[o] = \sum_{n=1}^{N} \bar v[n, o] \cdot 1 ,$$
#
# the bias gradient is **the upstream gradient summed over the batch**. This is the same
# multi-path chain rule as for a scalar used twice: every copy is a path to the loss.
#
# NumPy's broadcasting rule: align the shapes at the right; an operand may be missing leading
# axes (they are added, of length 1) and an axis of length 1 may be stretched to any length.
# The adjoint of this copying is summation over exactly the copied axes. Write
# `unbroadcast(grad, shape)` that takes an upstream gradient of the broadcast result's shape
# and returns an array of shape `shape`:
#
# 1. sum over the leading axes that `grad` has and `shape` has not;
# 2. then sum, keeping the axis (`keepdims=True`), over every axis where `shape` has length 1
#    but `grad` has not.
#
# Examples: a gradient of shape `(4, 3)` becomes `(3,)` by summing axis 0; `(4, 3)` to `(4, 1)`
# sums axis 1 keeping it; `(2, 3, 4)` to `(3, 1)` sums axis 0, then axis 2 keeping it; and a
# gradient of the operand's own shape comes back unchanged. Use it in every `backward()` whose
# operand may have been broadcast.

# %% [solution] from=reference.core:unbroadcast

# %% [code] id=try-unbroadcast
g = np.arange(12.0).reshape(4, 3)
print(unbroadcast(g, (3,)), unbroadcast(g, (4, 1)).ravel(), unbroadcast(g, (4, 3)).shape)

# %% [test] id=unbroadcast

# %% [markdown] id=add-mul-task
# ## Task 2 ({{points:add,mul}}): `Add` and `Mul`
#
# `Add(a, b)` and `Mul(a, b)` are elementwise with broadcasting: either operand may be the
# smaller one. Forward is just `a + b` and `a * b` on the values. Backward, in bar notation:
#
# - for $v = a + b$: $\;\bar a \mathrel{+}= \bar v$, $\;\bar b \mathrel{+}= \bar v$;
# - for $v = a \odot b$: $\;\bar a \mathrel{+}= \bar v \odot b$, $\;\bar b \mathrel{+}= \bar v \odot a$;
#
# each computed at the broadcast shape and then brought back to the operand's own shape with
# `unbroadcast`. While the tests of `Add`, `Mul` and `MSE` run, `unbroadcast` is the grader's
# own (correct) version, so a bug in yours costs points once, on task 1. The visible tests run
# two cases each: equal shapes `(4, 3)` and `(4, 3)`, and
# a bias-like `(3,)` broadcast against `(4, 3)`.

# %% [solution] from=reference.operations:Add keep=__init__

# %% [test] id=add

# %% [solution] from=reference.operations:Mul keep=__init__

# %% [test] id=mul

# %% [markdown] id=elementwise-task
# ## Task 3 (`Exp`, `Log`, `Tanh` {{points:exp}} each, `ReLU` {{points_n:relu}}): elementwise functions
#
# All four are elementwise, so their Jacobians are diagonal and backward is
# $\bar x \mathrel{+}= \bar v \odot f'(x)$. Often the derivative is cheapest in terms of the
# value $v = f(x)$ that `forward()` already stored in `self.value`:
#
# | component | $v$ | $\bar x \mathrel{+}=$ |
# |---|---|---|
# | `Exp` | $e^{x}$ | $\bar v \odot v$ |
# | `Log` | $\log x$ (natural log, $x > 0$) | $\bar v \,/\, x$ |
# | `Tanh` | $\tanh x$ | $\bar v \odot (1 - v^2)$ |
# | `ReLU` | $\max(0, x)$ | $\bar v \odot u(x)$ |
#
# where $u(x)$ is the step function: $1$ where $x > 0$ and $0$ elsewhere (we use $0$ at the kink
# $x = 0$). Use NumPy's elementwise functions (`np.exp`, `np.log`, `np.tanh`, `np.maximum`),
# not `math`, and not `np.max`, which reduces along an axis.
#
# Each visible test runs one case of shape `(4, 3)`; the `Log` and `Tanh` tests add the
# large-input case (`Log` on $10^{300}$ and $10^{-300}$, `Tanh` on $\pm 1000$), so they report
# two cases.

# %% [solution] from=reference.operations:Exp keep=__init__

# %% [test] id=exp

# %% [solution] from=reference.operations:Log keep=__init__

# %% [test] id=log

# %% [solution] from=reference.operations:Tanh keep=__init__

# %% [test] id=tanh

# %% [solution] from=reference.operations:ReLU keep=__init__

# %% [test] id=relu

# %% [markdown] id=sigmoid-task
# ## Task 4 ({{points:sigmoid}}): a stable `Sigmoid`
#
# $\sigma(x) = 1 / (1 + e^{-x})$, with $\bar x \mathrel{+}= \bar v \odot v \odot (1 - v)$.
#
# The formula needs care for large $|x|$. For $x = -1000$, `np.exp(1000)` overflows to `inf`;
# the rewritten form $e^{x} / (1 + e^{x})$ fails the other way round, giving `inf / inf = nan`
# for $x = 1000$. Both are exact on paper; the fix is to choose per entry the form whose
# exponent is never positive. With $e = e^{-|x|} \in (0, 1]$:
#
# $$\sigma(x) = \frac{1}{1 + e} \quad (x \ge 0), \qquad \sigma(x) = \frac{e}{1 + e} \quad (x < 0).$$
#
# Write the helper function `sigmoid(x)` for arrays this way (`np.where` picks per entry), and
# use it in `Sigmoid.forward`. The tests include inputs in the thousands and reject `nan`/`inf`:
# the visible test runs a case of shape `(4, 3)` and the large-input case ($\pm 1000$, $\pm 50$,
# ...), where NumPy's overflow warning counts as a failure, so the plain `1 / (1 + np.exp(-x))`
# fails it although its values come out finite.

# %% [solution] id=sigmoid-solution from=reference.operations:sigmoid,Sigmoid keep=__init__

# %% [test] id=sigmoid

# %% [markdown] id=vdot-task
# ## Task 5 ({{points:vdot}}): `VDot`, the linear layer
#
# `VDot(x, W)` computes `x @ W` for a weight matrix `W` of shape `(I, O)` and either a single
# input vector `x` of shape `(I,)` or a minibatch `x` of shape `(N, I)`, one example per row.
# A linear layer $v = W^\top x + b$ (for each row) is then `Add(VDot(x, W), b)`.
#
# Take the batch case. Entry by entry,
#
# $$v[n, o] = \sum_{i} x[n, i]\, W[i, o], \qquad
# \frac{\partial v[n, o]}{\partial x[n, i]} = W[i, o], \qquad
# \frac{\partial v[n, o]}{\partial W[i, o]} = x[n, i],$$
#
# and all other partial derivatives are zero (row $n$ of $v$ depends only on row $n$ of $x$;
# column $o$ of $v$ only on column $o$ of $W$). Contracting with $\bar v$:
#
# $$\bar x[n, i] \mathrel{+}= \sum_{o} \bar v[n, o]\, W[i, o]
# \quad\Longrightarrow\quad \bar x \mathrel{+}= \bar v\, W^\top ,$$
#
# $$\bar W[i, o] \mathrel{+}= \sum_{n} x[n, i]\, \bar v[n, o]
# \quad\Longrightarrow\quad \bar W \mathrel{+}= x^\top \bar v .$$
#
# Check the shapes: `(N, O) @ (O, I)` is `(N, I)` like `x`, and `(I, N) @ (N, O)` is `(I, O)`
# like `W`. The sum over $n$ in $\bar W$ is the same story as the bias: one weight matrix serves
# every example of the batch, so its gradient adds up the contributions of all rows (a sum,
# not a mean: any averaging belongs to the loss). When `x` is a single vector, $N$ is absent:
# $\bar x \mathrel{+}= W \bar v$ and $\bar W \mathrel{+}= x\, \bar v^\top$ (an outer product).
# Handle both cases, for example by viewing `x` and $\bar v$ as one-row matrices. The visible
# test runs one of each: `x` of shape `(4, 3)` and of shape `(3,)`, with `W` of shape `(3, 2)`.

# %% [solution] from=reference.operations:VDot keep=__init__

# %% [test] id=vdot

# %% [markdown] id=sum-mean-task
# ## Task 6 ({{points:sum,mean}}): `Sum` and `Mean`
#
# `Sum(x)` is the sum of all entries of `x` and `Mean(x)` their mean, both as 0-d arrays
# (wrap with `np.asarray`: NumPy reductions return scalars, not arrays). Every entry of `x`
# enters the result with weight $1$ (for `Sum`) or $1/\text{size}$ (for `Mean`), so $\bar x$
# is $\bar v$, respectively $\bar v / \text{size}$, in every entry; adding the 0-d $\bar v$ to
# `self.x.grad` broadcasts it for you. Here size is the total number of entries (`x.size`),
# not `len(x)`.

# %% [solution] from=reference.operations:Sum keep=__init__

# %% [test] id=sum

# %% [solution] from=reference.operations:Mean keep=__init__

# %% [test] id=mean

# %% [markdown] id=softmax-ce-task
# ## Task 7 ({{points:softmax_cross_entropy}}): `SoftmaxCrossEntropy`
#
# A classifier produces for each example $n$ a row of $C$ *logits* $z[n, :]$, one per class.
# The softmax turns a row into probabilities, $p_c = e^{z_c} / \sum_{c'} e^{z_{c'}}$, and the
# cross-entropy loss of an example with true class $y$ is $-\log p_y$. Written in terms of the
# logits,
#
# $$L_y(z) = -z_y + \log \sum_{c} e^{z_c} .$$
#
# `SoftmaxCrossEntropy(logits, labels)` takes logits of shape `(N, C)` and an `Input` of $N$
# integer labels in $\{0, \ldots, C-1\}$, and its value is the **mean** over the batch,
# $\ell = \frac{1}{N} \sum_n L_{y_n}(z[n, :])$, a 0-d array.
#
# **Gradient.** Differentiating $L_y$: the $\log\sum$ term gives
# $e^{z_c} / \sum_{c'} e^{z_{c'}} = p_c$ for every class $c$, and the $-z_y$ term adds $-1$ for
# $c = y$ only. So $\partial L_y / \partial z_c = p_c - [c = y]$: the predicted probabilities
# minus the one-hot encoding of the label. With the mean over the batch and the upstream
# $\bar v$:
#
# $$\bar z[n, c] \mathrel{+}= \bar v \, \frac{p[n, c] - [c = y_n]}{N} .$$
#
# The labels are data, not something we differentiate: leave `labels.grad` alone.
#
# **Stability.** With logits around 1000, $e^{z}$ overflows. Softmax does not change when the
# same number $m$ is subtracted from a whole row, because the factor $e^{-m}$ cancels between
# numerator and denominator. Take $m$ the row maximum: then every exponent is $\le 0$, the largest
# is exactly $e^0 = 1$, and
#
# $$\log \sum_c e^{z_c} = m + \log \sum_c e^{z_c - m}$$
#
# cannot overflow. Compute $\log p_c = (z_c - m) - \log\sum_{c'} e^{z_{c'} - m}$ directly rather
# than `np.log(p)`: a tiny probability can underflow to $0$, and $\log 0 = -\infty$.
# Store what `backward()` needs (the probabilities) in an attribute during `forward()`, and do
# not subtract $m$ in place from `self.logits.value`. The visible test runs two cases: logits of
# shape `(4, 3)`, and the large-input case (logits of $\pm 1000$, where an overflow fails it).

# %% [solution] from=reference.operations:SoftmaxCrossEntropy keep=__init__

# %% [test] id=softmax_cross_entropy

# %% [markdown] id=mse-task
# ## Task 8 ({{points:mse}}): `MSE`
#
# The mean squared error for regression, $\ell = \frac{1}{2}\,\text{mean}\big((y - t)^2\big)$
# over all entries, a 0-d array. With $S$ the number of entries,
# $\bar y \mathrel{+}= \bar v\,(y - t) / S$ and $\bar t \mathrel{+}= -\bar v\,(y - t) / S$
# (the $\frac{1}{2}$ cancels the $2$ from the square).

# %% [solution] from=reference.operations:MSE keep=__init__

# %% [test] id=mse

# %% [markdown] id=together
# ## Task 9 (a diagnostic, {{points:backward_mlp2}}): all together
#
# A last look at the contraction rule with a graph from the lecture: $H = \max(0, Wx + b)$
# with $W = 2$, $x = 3$, $b = 1$ (as $1 \times 1$ and length-1 arrays). Forward:
# $U_1 = Wx = 6$, $U_2 = U_1 + b = 7$, $H = \text{ReLU}(7) = 7$. Backward, seeding $\bar H = 1$:
# $\bar U_2 = 1 \cdot u(7) = 1$, then $\bar b = \bar U_2 = 1$ and $\bar U_1 = \bar U_2 = 1$, then
# $\bar W = x\,\bar U_1 = 3$ and $\bar x = W\,\bar U_1 = 2$.
#
# Then the same layer on a batch of three copies of $x$. Each row has the same gradient, and
# since $W$ and $b$ are shared by all rows, their gradients are three times as large:
# $\bar W = 9$, $\bar b = 3$, while each row of $\bar x$ is still $2$.

# %% [code] id=try-lecture-example
clear_compgraph()
W = Parameter(np.array([[2.0]]))
b = Parameter(np.array([1.0]))
x = Input(np.array([3.0]))
H = ReLU(Add(VDot(x, W), b))
loss = Sum(H)
Forward()
Backward(loss)
print("single:", H.value, W.grad, b.grad, x.grad)

clear_compgraph()
W = Parameter(np.array([[2.0]]))
b = Parameter(np.array([1.0]))
x = Input(np.full((3, 1), 3.0))
loss = Sum(ReLU(Add(VDot(x, W), b)))
Forward()
Backward(loss)
print("batch: ", W.grad, b.grad, x.grad.ravel())

# %% [markdown] id=backward-test-note
# The last test runs `Backward` through a two-layer perceptron built from your components
# (a linear layer `Add(VDot(x, W1), b1)`, a nonlinearity, a second linear layer, and
# `SoftmaxCrossEntropy`) and through a few other small graphs, and checks the
# loop invariant after every reverse step: once the components in a suffix of `components` have
# run `backward()`, every node's `grad` must be the derivative of the loss of the program made of
# those components only. When it fails, its message names the first component whose
# `backward()` broke the invariant. It earns no points: `Backward` is given, so what it finds is
# a bug of one of your components, which that component's own test already grades; read it as a
# second opinion that shows where in a network the bug bites.

# %% [test] id=backward_mlp2
