# %% [markdown] id=intro
# # Forward mode and reverse mode
#
# Backpropagation is one way to let a program compute its own derivatives. In this assignment
# you build two automatic-differentiation engines for scalar Python code and compare them:
#
# 1. **Forward mode** with *dual numbers*: every number carries its derivative with respect to
#    one chosen input, and each arithmetic operation updates both. One run of the program gives
#    the derivative along one input direction.
# 2. **Reverse mode** on a *tape*: every number remembers which numbers it was computed from.
#    After the program has run, one sweep from the output back to the inputs gives the
#    derivative of the output with respect to *every* input at once. This is backpropagation.
#
# Neither engine asks you to write a derivative of the whole program. You only teach each
# elementary operation (`+`, `*`, `exp`, ...) its local rule, and Python's operator overloading
# composes those rules for you.
#
# **Notation.** For a scalar output $\ell$ we write $\bar v = \partial \ell / \partial v$
# ("v bar") for the derivative of the output with respect to an intermediate value $v$. For
# forward mode we write $\dot v = \partial v / \partial x$ ("v dot") for the derivative of $v$
# with respect to the chosen input $x$. The dot travels forward with the computation; the bar
# travels backward against it.
#
# **What you implement** (each has an autograded test right after it):
#
# | task | what | points |
# |---|---|---|
# | 1 | `Dual`: arithmetic with plain numbers on either side (`+` {{points_n:dual_add}}, `-` {{points_n:dual_sub}}, `*` {{points_n:dual_mul}}, `/` {{points_n:dual_div}}, `**` {{points_n:dual_pow}}, unary `-` {{points_n:dual_neg}}; each test with the reflected twin) | {{points_n:dual_add,dual_sub,dual_mul,dual_div,dual_pow,dual_neg}} |
# | 2 | `Dual`: `exp`, `log`, `sin`, `cos`, `sigmoid`, `tanh` (one test of {{points_n:dual_exp}} each) | {{points_n:dual_exp,dual_log,dual_sin,dual_cos,dual_sigmoid,dual_tanh}} |
# | 3 | `derivative(f, x)` | {{points_n:derivative}} |
# | 4 | `gradient_fwd(f, xs)` | {{points_n:gradient_fwd}} |
# | 5 | `Var`: the operations' local derivatives (12 tests of {{points_n:tape_add}}, grouped as in tasks 1 and 2) | {{points_n:tape_add,tape_sub,tape_mul,tape_div,tape_pow,tape_neg,tape_exp,tape_log,tape_sin,tape_cos,tape_sigmoid,tape_tanh}} |
# | 5 | `Var`: `topological_order()` and `backward()` | {{points_n:tape_backward}} |
# | 6 | `gradient_rev(f, xs)` | {{points_n:gradient_rev}} |
#
# Every method has its own test, so a mistake in one method costs that method's points only.
# The tests of tasks 3, 4 and 6 do not use your `Dual` or `Var` operators at all: they call your
# function with a test function `f` of known derivative that reads its arguments' `val` and
# `dot` (or `value`) and builds its result with the given constructor.
#
# The last section is an experiment (not graded) that times the two modes as the number of
# inputs grows.
#
# Replace each `raise NotImplementedError()` with your code. Do not rename the classes or
# functions, and do not edit the locked cells: the grader uses them as they are. The visible
# part of a test runs when you run its cell; more cases are checked when your notebook is
# graded.

# %% [given] id=imports
import math
import time

import numpy as np
import matplotlib.pyplot as plt

# %% [markdown] id=sigmoid-helper-note
# The logistic function $\sigma(x) = 1 / (1 + e^{-x})$ appears in both engines. Written
# naively it overflows: `math.exp(-x)` raises `OverflowError` once $-x$ is above about 709.
# The helper below only ever exponentiates a non-positive number, using
# $\sigma(x) = e^{x} / (1 + e^{x})$ when $x < 0$. Use it wherever you need $\sigma$ of a float.

# %% [given] from=reference.forward_mode:_sigmoid

# %% [markdown] id=dual-numbers
# ## Part 1: forward mode with dual numbers
#
# ### The idea
#
# Fix one input $x$. Alongside every value $v$ the program computes, we also compute
# $\dot v = \partial v / \partial x$. We start from $\dot x = 1$ (the input changes one-for-one
# with itself) and $\dot c = 0$ for every constant $c$. Then every operation that builds a new
# value from old ones also builds the new dot from the old values and dots, by the ordinary
# rules of calculus:
#
# | operation | value | dot |
# |---|---|---|
# | $w = u + v$ | $u + v$ | $\dot u + \dot v$ |
# | $w = u - v$ | $u - v$ | $\dot u - \dot v$ |
# | $w = u\,v$ | $u\,v$ | $\dot u\,v + u\,\dot v$ |
# | $w = u / v$ | $u / v$ | $(\dot u\,v - u\,\dot v) / v^2$ |
# | $w = u^n$ ($n$ a plain number) | $u^n$ | $n\,u^{n-1}\,\dot u$ |
# | $w = -u$ | $-u$ | $-\dot u$ |
# | $w = g(u)$ | $g(u)$ | $g'(u)\,\dot u$ |
#
# The last row is the chain rule; for the six functions we support,
# $\exp' = \exp$, $\log'(u) = 1/u$, $\sin' = \cos$, $\cos' = -\sin$,
# $\sigma' = \sigma(1 - \sigma)$ and $\tanh' = 1 - \tanh^2$.
#
# A pair $(v, \dot v)$ is called a *dual number*, often written $v + \dot v\,\varepsilon$ with the
# rule $\varepsilon^2 = 0$. Multiplying two of them out,
# $(u + \dot u\varepsilon)(v + \dot v\varepsilon) = uv + (\dot u v + u \dot v)\varepsilon$,
# reproduces the product rule: the $\varepsilon^2$ term that would be second order simply vanishes.
#
# Each operation of the original program becomes two operations: the original one and one for
# its derivative, of similar cost. So a forward-mode pass costs a small constant factor more than
# the plain program, and it needs no extra memory beyond one extra number per live value.
#
# ### Worked example
#
# Take $y = x\,(x + 1)$ at $x = 17$, differentiated with respect to $x$:
#
# | step | value | dot |
# |---|---|---|
# | $x$ | 17 | 1 (the seed) |
# | $u = x + 1$ | 18 | $\dot x + 0 = 1$ |
# | $y = x\,u$ | $17 \cdot 18 = 306$ | $\dot x\,u + x\,\dot u = 1 \cdot 18 + 17 \cdot 1 = 35$ |
#
# Indeed $y = x^2 + x$ has derivative $2x + 1 = 35$ at 17.
#
# ### Operator overloading
#
# Python turns `a * b` into `a.__mul__(b)`. If `a` is a plain float and `b` is ours, the float
# does not know our type, so Python then tries `b.__rmul__(a)` (the *reflected* operation). So a
# function written for floats, such as `lambda x: x * x + 1.0` or `lambda x: 2 - x`, runs
# unchanged on a dual number as long as the class defines both the ordinary and the reflected
# operators. Careful with the non-commutative ones: `2 - d` calls `d.__rsub__(2)`, which must
# compute $2 - d$, not $d - 2$.
#
# ### Task 1 ({{points:dual_add,dual_sub,dual_mul,dual_div,dual_pow,dual_neg}}) and task 2 ({{points:dual_exp,dual_log,dual_sin,dual_cos,dual_sigmoid,dual_tanh}}): the class `Dual`
#
# The constructor is given: `Dual(val, dot=0.0)` stores two floats in the attributes `val` and
# `dot` (the value and its derivative). So is `Dual.lift(x)`: it returns `x` itself if it is
# already a `Dual`, and otherwise the constant `Dual(x, 0.0)`. Every binary operator starts by
# lifting its other operand, so that `d + 2`, `2 + d`, `d * 0.5`, `1 / d`, ... all work.
# Implement every other method of `Dual` below.
#
# - `+ - * /` in both orders (`__add__`/`__radd__`, `__sub__`/`__rsub__`, `__mul__`/`__rmul__`,
#   `__truediv__`/`__rtruediv__`), unary `-` (`__neg__`) and `**` with a plain-number
#   exponent (`__pow__`), following the table above. Each returns a **new** `Dual` and leaves its
#   operands untouched.
# - The methods `exp`, `log`, `sin`, `cos`, `sigmoid`, `tanh` (task 2) return the dual number of
#   $g(\text{self})$: value $g(u)$, dot $g'(u)\,\dot u$. Use `math` for the floats and the
#   `_sigmoid` helper above.
#
# The reflected `__radd__` and `__rmul__` may simply be the same functions as `__add__` and
# `__mul__`, since addition and multiplication commute; the class already says so.

# %% [solution] from=reference.forward_mode:Dual keep=__init__,__repr__,lift

# %% [markdown] id=try-dual-note
# A quick look before the tests: with $x = $ `Dual(3.0, 1.0)`, the expression $x^2 + 1$ should
# have value 10 and dot 6, and $2 - x$ should have value $-1$ and dot $-1$.

# %% [code] id=try-dual
x = Dual(3.0, 1.0)
print(x * x + 1.0, 2 - x, 1 / x, x ** 3)

# %% [markdown] id=dual-tests-note
# **The tests of task 1**, one per operation (with its reflected twin). Each uses two dual numbers, `a` with a positive
# val and `b` with a negative val, both with a nonzero dot (of different sizes, so a dropped
# term of a rule always shows), a plain number `c` (positive or negative), a fractional
# exponent `n` and an integer exponent `k` (3 or -3). The visible test draws them with seed 0;
# grading draws more. Each expression's val and dot are compared with the rule, and afterwards
# `a` and `b` must still hold their own val and dot (an operator returns a **new** `Dual`):
#
# | test | expressions |
# |---|---|
# | `dual_add` | `a + b`, `a + c`, `c + a`, `c + b` |
# | `dual_sub` | `a - b`, `b - a`, `a - c`, `c - a`, `c - b` |
# | `dual_mul` | `a * b`, `b * a`, `a * c`, `c * a`, `c * b` |
# | `dual_div` | `a / b`, `b / a`, `a / c`, `c / a`, `c / b` |
# | `dual_pow` | `a ** n`, `b ** k` (a negative base), `a ** k` |
# | `dual_neg` | `-a`, `-b` |
#
# A failing test names the method at fault (`Dual.__rsub__` for `c - a`) and the numbers.

# %% [test] id=dual_add

# %% [test] id=dual_sub

# %% [test] id=dual_mul

# %% [test] id=dual_div

# %% [test] id=dual_pow

# %% [test] id=dual_neg

# %% [markdown] id=elementary-functions
# ### Functions that work on every kind of number
#
# We want to write `exp(x)` in a function and call that function with a float, a `Dual`, or
# (in Part 2) a reverse-mode `Var`. The module-level functions below do this by *duck typing*:
# if the argument has a method of that name, they call it; otherwise the argument is a plain
# number and they fall back to `math` (or `_sigmoid`). They are given: once your `Dual` has
# its methods, `exp(Dual(0.0, 1.0))` is the dual number of $e^0$ with dot $1$.

# %% [given] from=reference.forward_mode:exp,log,sin,cos,sigmoid,tanh

# %% [code] id=try-functions
print(exp(Dual(0.0, 1.0)), sin(Dual(0.0, 1.0)), sigmoid(Dual(0.0, 1.0)), tanh(0.5))

# %% [markdown] id=dual-functions-tests-note
# **The tests of task 2**, one per method: `g(a)` and `g(b)` for the same kind of `a` (positive
# val) and `b` (negative val; for `log` a positive one) as above, through the module-level
# functions. The dot must be $g'(u)\,\dot u$ (the chain rule: do not forget the factor $\dot u$),
# and the operand must be unchanged.

# %% [test] id=dual_exp

# %% [test] id=dual_log

# %% [test] id=dual_sin

# %% [test] id=dual_cos

# %% [test] id=dual_sigmoid

# %% [test] id=dual_tanh

# %% [markdown] id=derivative-task
# ### Task 3 ({{points:derivative}}): `derivative(f, x)`
#
# `f` is an ordinary Python function of one number, written with `+ - * / **` and the six
# functions above. Return $f'(x)$ as a float, using **one** call of `f`: call it on the dual
# number whose value is `x` and whose dot is the seed 1, and read off the dot of the result.
#
# One corner case: if `f` ignores its argument and returns a plain number (for example
# `lambda x: 4.0`), the result is not a `Dual`; its derivative is then 0.
#
# The worked example: `derivative(lambda x: x * x + 1.0, 3.0)` is `6.0`, and
# `derivative(lambda x: x * (x + 1), 17.0)` is `35.0`.
#
# **The test** passes its own `f` of known derivative, which reads the `val` and `dot` of the
# `Dual` it is given and returns a `Dual` made with the constructor, so it does not depend on
# your operators: the visible cases are these two functions at 3 and at 17, and `lambda x: 4.0`
# (a plain number) at 2; grading adds other functions. Each case is a fraction of the points.

# %% [solution] from=reference.forward_mode:derivative

# %% [code] id=try-derivative
print(derivative(lambda x: x * x + 1.0, 3.0), derivative(lambda x: x * (x + 1), 17.0))

# %% [test] id=derivative

# %% [markdown] id=gradient-fwd-task
# ### Task 4 ({{points:gradient_fwd}}): `gradient_fwd(f, xs)`
#
# Now `f` takes several numbers, called as `f(*xs)`, and we want the whole gradient
# $\left(\partial f/\partial x_0, \ldots, \partial f/\partial x_{n-1}\right)$ as a NumPy array of
# length $n = $ `len(xs)`.
#
# A dual number tracks the derivative with respect to **one** direction. To get
# $\partial f / \partial x_i$, seed $x_i$ with dot 1 and every other input with dot 0, run `f`
# once, and read the dot of the output. The gradient therefore takes $n$ passes, one per input.
# (As in task 3, an output that is a plain number has derivative 0.)
#
# Example: for $f(a, b) = a\,b + \sin a$ at $(a, b) = (0, 2)$ the gradient is
# $(b + \cos a,\; a) = (3, 0)$.
#
# **The test** works as in task 3 (its own `f` of known gradient, built with the constructor
# only): the visible cases are $a\,b + \sin a$ at $(0.5, 2)$, $x\,(x + 1)$ at $[17]$ and
# `lambda a, b: 5.0` (a plain number) at $(1, 2)$; grading adds functions of three and four inputs.

# %% [solution] from=reference.forward_mode:gradient_fwd

# %% [code] id=try-gradient-fwd
print(gradient_fwd(lambda a, b: a * b + sin(a), [0.0, 2.0]))

# %% [test] id=gradient_fwd

# %% [markdown] id=reverse-mode
# ## Part 2: reverse mode on a tape
#
# ### From one input to one output
#
# Forward mode fixes an *input* and pushes $\dot v = \partial v / \partial x$ forward. Reverse
# mode fixes the *output* $\ell$ and computes $\bar v = \partial \ell / \partial v$ for every
# value $v$, inputs included. But $\bar v$ cannot be known when $v$ is computed: it depends on
# everything that is later done with $v$. If $v$ is used by the operations that produce
# $w_1, \ldots, w_k$, the multivariate chain rule says
#
# $$\bar v \;=\; \sum_{i=1}^{k} \bar w_i \, \frac{\partial w_i}{\partial v}.$$
#
# Each term needs $\bar w_i$ (known only once everything after $w_i$ has been handled) and the
# local derivative $\partial w_i / \partial v$ (known as soon as $w_i$ is computed, since it
# depends only on the operands' values). So the program first runs forward, **recording** for
# each new value its operands and these local derivatives. Afterwards we walk the record
# backwards, from the output to the inputs, and each value passes
# $\bar w \cdot \partial w / \partial v$ back to each of its operands $v$, which **add** up what
# they receive.
#
# ### Why the order matters
#
# A value may only pass its bar back once it is complete, that is, once every value computed
# from it has already passed its contribution back to it. A *topological order* of the graph
# lists every value after all of its operands; walking such an order in reverse guarantees
# exactly that. The algorithm, for an output $\ell$:
#
# 1. list the graph behind $\ell$ in a topological order;
# 2. set every $\bar v = 0$ (the accumulators), then $\bar \ell = 1$ (the seed: $\partial \ell / \partial \ell$);
# 3. for each value $w$ in **reverse** topological order, for each operand $v$ of $w$:
#    $\bar v \mathrel{+}= \bar w \cdot \partial w / \partial v$.
#
# When the loop reaches a value, its bar is final, and every input ends with its full
# derivative. Step 2 matters too: if you call `backward()` twice, the second call must not add
# onto the bars of the first.
#
# ### Worked example, now backwards
#
# The same $u = x + 1$, $y = x\,u$ at $x = 17$. The forward run records
# $u = 18$ with $\partial u / \partial x = 1$, and $y = 306$ with
# $\partial y / \partial x = u = 18$ and $\partial y / \partial u = x = 17$.
# A topological order is $(x, u, y)$. The backward sweep:
#
# | step | update | bars afterwards |
# |---|---|---|
# | seed | $\bar y = 1$ | $\bar y = 1,\ \bar u = 0,\ \bar x = 0$ |
# | process $y$ | $\bar u \mathrel{+}= \bar y \cdot x = 17$, $\;\bar x \mathrel{+}= \bar y \cdot u = 18$ | $\bar u = 17,\ \bar x = 18$ |
# | process $u$ | $\bar x \mathrel{+}= \bar u \cdot 1 = 17$ | $\bar x = 35$ |
# | process $x$ | (an input: no operands) | $\bar x = 35$ |
#
# $x$ is used twice, directly by $y$ and through $u$, and its bar collects one contribution
# along each path: $18 + 17 = 35$, the same answer forward mode gave. Had we written
# $\bar x = \ldots$ instead of $\bar x \mathrel{+}= \ldots$, the second path would have erased
# the first. The simplest case of such sharing is $\ell = x \cdot x$: both operands are the same
# node and $\bar x = x + x = 2x$.
#
# ### Task 5 ({{points:tape_add,tape_sub,tape_mul,tape_div,tape_pow,tape_neg,tape_exp,tape_log,tape_sin,tape_cos,tape_sigmoid,tape_tanh,tape_backward}}): the class `Var`
#
# A `Var` is a scalar that records how it was made. The constructor and `Var.lift` (as for
# `Dual`: a plain number becomes a parentless `Var`) are given:
# `Var(value, parents=())` stores `value` as a float, `grad = 0.0`, and `parents`, a tuple of
# pairs `(operand, local_derivative)`, one per operand, where `local_derivative` is the float
# $\partial\,\text{self} / \partial\,\text{operand}$ evaluated at the operands' values. A `Var`
# made by the user (an input or a constant) has no parents. Implement every other method:
#
# - The operators (`+ - * /` in both orders, unary `-`, `**` with a plain
#   exponent) and the methods `exp`, `log`, `sin`, `cos`, `sigmoid`, `tanh` each compute the new
#   value **and** record the local derivatives: for example `a * b` returns
#   `Var(a.value * b.value, [(a, b.value), (b, a.value)])`. Plain numbers are lifted to parentless
#   `Var`s. The module-level `exp`, `sin`, ... from Part 1 call these methods, so they work on
#   `Var` unchanged.
# - `topological_order()` returns a list of every `Var` that this one depends on (itself
#   included), each one **after** all of its parents and each one **once**, even when it is
#   reachable along several paths. A depth-first search that appends a node after all its
#   parents does this; remember visited nodes by `id`, and prefer an explicit stack to recursion
#   so that a tape with thousands of nodes does not exceed Python's recursion limit.
# - `backward()` runs the three steps above, with `self` as the output $\ell$.

# %% [solution] from=reference.tape:Var keep=__init__,__repr__,lift

# %% [markdown] id=try-tape-note
# The worked example on your tape: after `y.backward()`, `x.grad` should be 35 and `u.grad` 17.
# The second `backward()` must give the same numbers, not twice them.

# %% [code] id=try-tape
x = Var(17.0)
u = x + 1
y = x * u
y.backward()
print(y.value, u.grad, x.grad)
y.backward()
print(y.value, u.grad, x.grad)

# %% [markdown] id=tape-tests-note
# **The tests of task 5.** One test per operation (`tape_add`, `tape_sub`, `tape_mul`,
# `tape_div`, `tape_pow`, `tape_neg`, `tape_exp`, ..., `tape_tanh`), on
# the same expressions as the `Dual` tests with `a = Var(...)` of positive value and
# `b = Var(...)` of negative value: the result's value, and the local derivatives it records in
# `parents` (the test follows the recorded pairs itself, so these tests do not call your
# `backward()`), with the operands unchanged. Then `tape_backward`: the test builds two graphs
# with the given constructor and known local derivatives, in which a value is used by several
# operations and twice by one operation, and checks `topological_order()` (every node once, after
# its parents) and every node's grad after `backward()`, after a second `backward()`, and after
# a `backward()` that starts with every grad set to some other number.

# %% [test] id=tape_add

# %% [test] id=tape_sub

# %% [test] id=tape_mul

# %% [test] id=tape_div

# %% [test] id=tape_pow

# %% [test] id=tape_neg

# %% [test] id=tape_exp

# %% [test] id=tape_log

# %% [test] id=tape_sin

# %% [test] id=tape_cos

# %% [test] id=tape_sigmoid

# %% [test] id=tape_tanh

# %% [test] id=tape_backward

# %% [markdown] id=gradient-rev-task
# ### Task 6 ({{points:gradient_rev}}): `gradient_rev(f, xs)`
#
# The reverse-mode counterpart of `gradient_fwd`: wrap each input in a `Var`, call `f` **once**
# on them, call `backward()` on the result, and return the inputs' grads as a NumPy array of
# length `len(xs)`. If `f` returns a plain number, every derivative is 0.
#
# **The test** passes its own `f`: it reads the inputs' `value` and returns a `Var` (made with
# the constructor) whose `backward()` sets the known gradient on the inputs, so it does not
# depend on your task 5. Visible cases: $a\,b + \sin a$ at $(0.5, 2)$, $x\,(x + 1)$ at $[17]$ and
# `lambda a, b: 5.0` (a plain number) at $(1, 2)$; grading adds others.

# %% [solution] from=reference.tape:gradient_rev

# %% [code] id=try-gradient-rev
print(gradient_rev(lambda a, b: a * b + sin(a), [0.0, 2.0]),
      gradient_rev(lambda x: x * (x + 1), [17.0]))

# %% [test] id=gradient_rev

# %% [markdown] id=experiment-cost-note
# ## Part 3: experiment: how the cost grows with the number of inputs
#
# Suppose one evaluation of $f$ costs $C$ elementary operations.
#
# - **Forward mode** gets one directional derivative per pass, at a cost of a small constant
#   times $C$. A gradient with respect to $n$ inputs needs $n$ passes: about $n\,C$.
# - **Reverse mode** makes one recording forward pass and one backward pass that visits each
#   recorded operation once and does a constant amount of work per operand. That is a small
#   constant times $C$, **whatever $n$ is**. The price is memory: the whole tape stays alive
#   until the backward pass.
#
# In the function below, $f(x_0, \ldots, x_{n-1}) = \sum_i x_i\,x_{i+1}$, the cost $C$ itself
# grows linearly with $n$. So we expect forward mode to take time proportional to $n^2$ and
# reverse mode time proportional to $n$. Training a network means a gradient with respect to
# millions of parameters for one scalar loss: this is why deep learning uses reverse mode.
#
# Run the cell, look at the log-log plot (a slope of 2 means quadratic, a slope of 1 linear)
# and answer in the markdown cell below: at which $n$ does reverse mode overtake forward mode
# on your machine, and why is forward mode not slower even for $n = 1$ or $2$? (Not graded.)

# %% [code] experiment id=experiment-cost
def sum_of_products(*xs):
    """f = x0*x1 + x1*x2 + ... + x(n-2)*x(n-1); df/dxi = x(i-1) + x(i+1)."""
    total = 0.0
    for a, b in zip(xs[:-1], xs[1:]):
        total = total + a * b
    return total


def best_time(fn, repeats=3):
    """The fastest of a few runs: less noisy than a single measurement."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


ns = [2, 4, 8, 16, 32, 64, 128, 256, 512]
t_fwd, t_rev = [], []
for n in ns:
    xs = list(np.random.default_rng(n).normal(size=n))
    assert np.allclose(gradient_fwd(sum_of_products, xs), gradient_rev(sum_of_products, xs))
    t_fwd.append(best_time(lambda: gradient_fwd(sum_of_products, xs)))
    t_rev.append(best_time(lambda: gradient_rev(sum_of_products, xs)))

plt.figure(figsize=(5, 4))
plt.loglog(ns, t_fwd, "o-", label="forward mode: n passes")
plt.loglog(ns, t_rev, "s-", label="reverse mode: 1 + 1 passes")
plt.xlabel("number of inputs n")
plt.ylabel("seconds per gradient")
plt.legend()
plt.title("Cost of a full gradient")
plt.show()
for n, tf, tr in zip(ns, t_fwd, t_rev):
    print(f"n = {n:4d}   forward {tf * 1e3:8.2f} ms   reverse {tr * 1e3:8.2f} ms   ratio {tf / tr:6.1f}")

# %% [markdown] id=experiment-answer
# *Your answer here.*
