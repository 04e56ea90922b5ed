# %% [markdown] id=intro
# # Training a multilayer perceptron with EDF
#
# You now have everything needed to train a real network: tensor-valued components, `Forward`,
# `Backward` and `SGD`. In this assignment you put them together into a multilayer perceptron
# (MLP) that reads small images of handwritten digits and says which digit it sees, train it
# with minibatch stochastic gradient descent, and run two experiments on how the learning rate
# and the depth of the network affect training.
#
# | task | what | points |
# |---|---|---|
# | 1 | `build_mlp`: the network as an EDF graph | {{points_n:build_mlp}} |
# | 2 | `train_step`: one minibatch SGD step | {{points_n:train_step}} |
# | 2 | `train`: epochs of shuffled minibatches | {{points_n:train}} |
# | 1 | `MLP.predict` and `MLP.accuracy` | {{points_n:predict}} |
# | 3 | experiments: learning rate and depth (with plots) | not graded |
# | 4 | your final network, trained by your own code (at least 95% accuracy), and `predict(X)` | {{points_n:accuracy}} |
#
# Every function is graded on its own, with cases the grader chooses: it sets known weights
# into the network your `build_mlp` made and compares `predict` with the correct forward pass,
# compares one `train_step` from weights and a batch it picks with the correct update, and
# follows the batches your `train` visits and the history it returns (on a model and a
# `train_step` of its own, so `train` is judged alone). For task 4 the grader trains a fresh network with
# your `build_mlp`, your `train` and your `final_settings`, from a seed it sets, on a training
# set it draws, and measures the trained weights on digits it keeps to itself (never in your
# notebook). A classifier that is not your trained EDF network earns nothing there. Training
# takes seconds; if a cell runs for minutes, something is off.
#
# Replace each `raise NotImplementedError()` with your code, and do not rename `predict` or
# edit the locked cells: the grader uses them as they are.

# %% [given] id=imports
import time
from dataclasses import dataclass, field

import numpy as np
import matplotlib.pyplot as plt

# %% [markdown] id=framework-note
# ## The EDF framework and components (given)
#
# The core and the components are the solutions of the previous assignment. You do not need to
# change them; read them again if you are unsure what a component computes.

# %% [given] id=edf-core from=reference.core#graph_lists reference.core:clear_compgraph,as_float_array,zeros_like_grad,unbroadcast,Input,Parameter,CompNode,Forward,Backward,SGD

# %% [given] id=edf-components from=reference.operations:Add,Mul,Square,Exp,Log,sigmoid,Sigmoid,Tanh,ReLU,VDot,Sum,Mean,SoftmaxCrossEntropy,MSE

# %% [markdown] id=data
# ## The data
#
# The data set is scikit-learn's copy of the UCI handwritten digits: 1797 grey-scale images of
# $8 \times 8$ pixels, each labelled with its digit $0, \ldots, 9$. Each image is flattened into
# a row of 64 features, scaled from the original 16 grey levels to $[0, 1]$. The cell below
# shuffles the images with a fixed seed and holds out 360 of them as a test set:
#
# - `X_train` of shape `(1437, 64)` and `y_train` of shape `(1437,)` (integer labels), for
#   training and for any tuning you do;
# - `X_test` of shape `(360, 64)` and `y_test`, only to measure the final network once.
#
# Keep this cell as it is and do not load the data anywhere else: when grading, this cell
# is the one that supplies the data.

# %% [given] id=load-data from=reference.mlp:load_digits_split
X_train, y_train, X_test, y_test = load_digits_split(seed=0)
print(X_train.shape, y_train.shape, X_test.shape, y_test.shape)

# %% [code] experiment id=show-digits
fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
for ax, image, label in zip(axes, X_train, y_train):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_title(str(label))
    ax.axis("off")
plt.show()

# %% [markdown] id=model-task
# ## Task 1: the network as a computation graph
#
# An MLP with layer widths $(d_0, d_1, \ldots, d_L)$ (here $d_0 = 64$ pixels and $d_L = 10$
# classes) alternates linear layers and elementwise nonlinearities. For a minibatch
# $h_0 = x$ of shape $(N, d_0)$:
#
# $$v_l = h_{l-1} W_l + b_l, \qquad h_l = \phi(v_l) \quad (l = 1, \ldots, L-1), \qquad
# z = h_{L-1} W_L + b_L ,$$
#
# with $W_l$ of shape $(d_{l-1}, d_l)$, $b_l$ of shape $(d_l,)$, and $\phi$ either ReLU or
# $\tanh$. Row by row this is the linear layer $v = W^\top h + b$ from the lecture. The last
# layer has no nonlinearity: its outputs $z$ of shape $(N, 10)$ are the logits, and the loss is
# the mean softmax cross-entropy of the logits against the labels. In EDF each line is one
# component (or two), and building the graph *is* writing down the network:
#
# ```
# x = Input();  labels = Input()            # no values yet: set per minibatch
# h = x
# for each layer l = 1, ..., L:
#     W_l = Parameter(random (d_{l-1}, d_l));  b_l = Parameter(zeros (d_l,))
#     h = Add(VDot(h, W_l), b_l)
#     if l < L: h = ReLU(h)   (or Tanh(h))
# loss = SoftmaxCrossEntropy(logits=h, labels=labels)
# ```
#
# The inputs are created without a value: a graph is built **once**, and for every minibatch
# we `set` new values into `x` and `labels` and run `Forward()` again.
#
# **Initialisation.** The biases start at zero, but the weights must not: if all weights of a
# layer were equal, all its units would compute the same thing, receive the same gradient and
# stay identical forever. Draw them at random, with a scale that keeps the size of the
# activations roughly constant from layer to layer. For ReLU layers the usual choice (He
# initialisation) is a normal distribution with mean 0 and standard deviation
# $\sqrt{2 / d_{l-1}}$, where $d_{l-1}$ is the layer's number of inputs (its *fan-in*). Use a
# `np.random.default_rng(seed)` generator so that a seed gives the same network every time.
#
# **What to write.**
#
# - `build_mlp(sizes, activation="relu", seed=0, dtype=np.float64)` first calls
#   `clear_compgraph()` (a fresh graph), then builds the graph above and returns an `MLP`
#   record (below). Its arguments:
#   - `sizes`: the layer widths $(d_0, \ldots, d_L)$, input width first, number of classes
#     last; `sizes = (64, 10)` has no hidden layer at all (multinomial logistic regression);
#   - `activation`: `"relu"` or `"tanh"`; the nonlinearity is `ACTIVATIONS[activation]`, after
#     every layer except the last (the logits have none);
#   - `seed`: make **one** generator `rng = np.random.default_rng(seed)` and draw the weights
#     from it layer by layer, $W_l$ = `rng.normal(0.0, np.sqrt(2 / d_{l-1}), (d_{l-1}, d_l))`
#     (He initialisation, for ReLU and tanh alike); $b_l$ = zeros of shape $(d_l,)$. The same
#     seed gives the same network;
#   - `dtype`: the dtype of every weight and bias (`.astype(dtype)`); float64, the default, is
#     what the grader uses.
#
#   The `MLP` record holds its input node `x`, its label node `labels`, the `logits` node
#   (the last `Add`), the `loss` node, and the list `layers` of `(W, b)` `Parameter` pairs,
#   first layer first.
# - `MLP.predict(X)` returns the predicted classes for the rows of `X` (shape `(N, 64)`) as
#   an integer array of shape `(N,)`: the index of the largest logit in each row (`argmax`
#   along the last axis) of a `Forward()` through the graph, with the network's current
#   weights. `Forward()` also computes the loss node, which needs labels of the right length:
#   set `labels` to dummy labels (zeros) first. `MLP.accuracy(X, y)` is the fraction of rows
#   where the prediction equals `y`, as a float.
#
# One caution: the EDF lists are global, and `build_mlp` starts by clearing them. Building a
# second network therefore makes the first one's graph unusable (its `Forward()` would run
# the new graph). Build, train and use one network at a time.

# %% [given] id=activations from=reference.mlp#activations

# %% [solution] from=reference.mlp:MLP

# %% [solution] from=reference.mlp:build_mlp

# %% [markdown] id=try-untrained-note
# A sanity check before any training. With small random weights the logits are close to each
# other, the softmax is nearly uniform over the 10 classes, and the loss should be within a
# few tenths of $-\log(1/10) = \log 10 \approx 2.30$. A starting loss far from that points to a bug in the
# graph or in the initialisation. The accuracy should be near chance, about 10%.

# %% [code] id=try-untrained
model = build_mlp((64, 64, 10), "relu", seed=0)
model.x.set(X_train)
model.labels.set(y_train)
Forward()
print("initial loss", float(model.loss.value), "(log 10 =", np.log(10), ")")
print("initial accuracy", model.accuracy(X_train, y_train))

# %% [test] id=build_mlp

# %% [markdown] id=training-loop-task
# ## Task 2: the training loop
#
# The training loss is the average of the per-example loss over the whole training set. Its
# gradient would need a pass over all 1437 examples per step. Minibatch SGD instead estimates
# the gradient from a small random batch, takes a step, and moves on to the next batch:
#
# $$\theta \leftarrow \theta - \eta\, \bar\theta \qquad \text{for every parameter } \theta,$$
#
# where $\bar\theta = \partial \ell / \partial \theta$ is computed on the batch and $\eta$ is the
# learning rate. One *epoch* is one pass over the training set in a fresh random order,
# cut into consecutive batches.
#
# - `train_step(model, X, y, eta)` does one step on one batch (`X` of shape `(B, 64)`, `y`
#   the `B` integer labels, `eta` the learning rate $\eta$): set the batch into `model.x` and
#   `model.labels`, then `Forward()`, `Backward(model.loss)` and `SGD(eta)`, which updates
#   every parameter of the graph (all the $W_l$ and $b_l$) by $-\eta\,\bar\theta$ with the
#   gradient of the batch's mean softmax cross-entropy. It returns the batch's loss *before*
#   the update (the loss `Forward()` computed), as a float.
# - `train(model, X, y, eta, epochs, batch_size=32, seed=0, X_val=None, y_val=None)` runs
#   `epochs` epochs of `train_step(model, X[rows], y[rows], eta)`. Make **one** generator
#   `rng = np.random.default_rng(seed)` before the first epoch; each epoch draws a fresh order
#   `rng.permutation(len(X))` from it and cuts that order into
#   `max(1, len(X) // batch_size)` consecutive batches with `np.array_split` (so batches
#   have about `batch_size` rows), then calls `train_step` on each batch in turn. After each
#   epoch append a record to the history it returns: `{"epoch": e, "loss": ...}` with `e`
#   counting from 1 and "loss" the mean of that epoch's batch losses, plus `"val_acc"`
#   (`model.accuracy(X_val, y_val)` after the epoch) when `X_val` is given. The `seed` of
#   `train` only fixes the order of the examples; the initial weights come from `build_mlp`'s.

# %% [solution] from=reference.mlp:train_step

# %% [test] id=train_step

# %% [solution] from=reference.mlp:train

# %% [test] id=train

# %% [markdown] id=experiments
# ## Task 3: experiments (not graded)
#
# To compare settings fairly we need data that plays no part in training, and the test set
# must stay untouched until the very end (if we chose the settings by their test accuracy,
# the test accuracy would no longer be an honest estimate). So we hold out the last 300
# training examples as a *validation set* for the experiments.

# %% [code] id=validation-split
X_tr, y_tr = X_train[:-300], y_train[:-300]
X_val, y_val = X_train[-300:], y_train[-300:]
print(X_tr.shape, X_val.shape)

# %% [markdown] id=learning-rate-note
# ### The learning rate
#
# The step $-\eta\,\bar\theta$ follows the local slope of the loss. With a tiny $\eta$ every
# step is safe but short, and the loss falls slowly. A larger $\eta$ makes faster progress
# while the slope stays a good guide over the length of a step; beyond some point the steps
# overshoot, the loss jumps around or grows, and with very large values the weights blow up.
#
# The cell trains the same network (same initial weights, same batch order) with several
# learning rates and plots the training loss and the validation accuracy per epoch. Run it,
# then describe in the markdown cell below what you see: which learning rates are too small,
# which too large, and which you would choose. Feel free to change the list.

# %% [code] experiment id=experiment-learning-rate
etas = [0.01, 0.05, 0.2, 0.5, 1.0, 3.0]
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
for eta in etas:
    model = build_mlp((64, 64, 10), "relu", seed=0)
    with np.errstate(over="ignore", invalid="ignore"):  # the largest rates may diverge
        history = train(model, X_tr, y_tr, eta, epochs=15, X_val=X_val, y_val=y_val)
    epochs = [r["epoch"] for r in history]
    ax_loss.plot(epochs, [r["loss"] for r in history], label=f"eta = {eta}")
    ax_acc.plot(epochs, [r["val_acc"] for r in history], label=f"eta = {eta}")
    print(f"eta = {eta:5}: final loss {history[-1]['loss']:.4f}, "
          f"validation accuracy {history[-1]['val_acc']:.3f}")
ax_loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log", title="Training loss")
ax_acc.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1), title="Validation accuracy")
ax_acc.legend()
plt.show()

# %% [markdown] id=answer-learning-rate
# *Your observations on the learning rate here.*

# %% [markdown] id=depth-note
# ### The depth
#
# More hidden layers give the network more capacity, but also a longer chain of factors in
# every gradient, which can make plain SGD slower or less stable. The cell below trains
# networks with 0 to 4 hidden layers of 64 units, with ReLU and with tanh, for the same number
# of epochs and the same learning rate, and plots the final validation accuracy against the
# depth. Describe what you see in the markdown cell below. Does depth help on this data set?
# Does the answer depend on the activation? How does training time grow?

# %% [code] experiment id=experiment-depth
depths = [0, 1, 2, 3, 4]
fig, ax = plt.subplots(figsize=(6, 4))
for activation in ["relu", "tanh"]:
    accuracies = []
    for depth in depths:
        start = time.perf_counter()
        model = build_mlp((64, *[64] * depth, 10), activation, seed=0)
        history = train(model, X_tr, y_tr, eta=0.2, epochs=15, X_val=X_val, y_val=y_val)
        accuracies.append(history[-1]["val_acc"])
        print(f"{activation} with {depth} hidden layers: validation accuracy "
              f"{accuracies[-1]:.3f} in {time.perf_counter() - start:.2f} s")
    ax.plot(depths, accuracies, "o-", label=activation)
ax.set(xlabel="hidden layers", ylabel="validation accuracy after 15 epochs", xticks=depths,
       title="Depth")
ax.legend()
plt.show()

# %% [markdown] id=answer-depth
# *Your observations on the depth here.*

# %% [markdown] id=final-model-task
# ## Task 4 ({{points:accuracy}}): your final network
#
# Choose an architecture and training settings based on your experiments and write them
# into `final_settings`: `"sizes"` (64 inputs first, 10 classes last, at most 4 hidden layers
# of at most 256 units), `"activation"` (`"relu"` or `"tanh"`), `"eta"`, `"epochs"` (at most
# 50) and `"batch_size"`. Then train a fresh network, `final_model`, with exactly these
# settings, with your `build_mlp` and your `train`, on the **whole** training set `X_train`,
# `y_train` (the validation split was only for choosing). Then define `predict(X)`, which
# returns the predicted labels of `final_model` for the rows of `X` as an integer array of
# shape `(len(X),)`.
#
# The test below measures `predict` on the test set and requires an accuracy of at least
# 0.95. The grader does more: it trains a fresh network itself, as
# `train(build_mlp(sizes, activation, seed=s), X, y, eta, epochs, batch_size, seed=s)` with
# your functions and `final_settings`, from its own seed `s` and on a training set it draws,
# and measures the trained weights on digits your notebook never had (they need at least
# 0.94 there: another sample of 360 digits varies by about 0.01). Keep the training to a
# few seconds. Do not build another graph after this cell (see the caution in task 1): the
# grader also sets known weights into this network and checks that `predict` follows them.
# The two halves (the fresh network learns; `predict` follows your final network) share the
# test's points equally. When `predict` follows your network but the fresh network does not
# learn although correct functions learn with your `final_settings`, the fault is in
# `build_mlp`, `train_step` or `train`: their own tests charge it, and this test says so
# without taking the points again.

# %% [solution] id=final-model-solution
# Your settings, then your final network built with build_mlp and trained with train on X_train, y_train.
### BEGIN SOLUTION
final_settings = {"sizes": (64, 64, 10), "activation": "relu", "eta": 0.5, "epochs": 20, "batch_size": 32}
final_model = build_mlp(final_settings["sizes"], final_settings["activation"], seed=0)
final_history = train(final_model, X_train, y_train, final_settings["eta"], final_settings["epochs"],
                      final_settings["batch_size"], seed=0)
print("final training loss", final_history[-1]["loss"])
### END SOLUTION

# %% [solution] id=predict-solution
def predict(X):
    """The trained network's predicted digit (an int in 0..9) for each row of X."""
    ### BEGIN SOLUTION
    return final_model.predict(X)
    ### END SOLUTION

# %% [test] id=predict

# %% [test] id=accuracy
