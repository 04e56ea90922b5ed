# %% [markdown] id=intro
# # Convolution in EDF
#
# A multilayer perceptron treats an image as a list of 64 unrelated numbers: shuffle the
# pixels the same way in every image and it learns just as well. It does not know that
# neighbouring pixels belong together, or that a stroke means the same thing wherever it
# appears. A *convolutional* layer builds both facts in: it looks at small windows of the
# image, and it uses the same few weights (a *kernel*) at every position.
#
# In this assignment you write the three components a small convolutional network needs,
# `Conv2D`, `MaxPool2D` and `Flatten`, as EDF components like the ones of the tensor
# assignment, and then train a convolutional network on the handwritten digits.
#
# **What you implement** (each has an autograded test right after it):
#
# | task | what | points |
# |---|---|---|
# | 1 | `Conv2D`: forward and backward, with stride, padding and bias | {{points_n:conv2d}} |
# | 2 | `MaxPool2D` | {{points_n:maxpool2d}} |
# | 3 | `Flatten` | {{points_n:flatten}} |
# | 4 | everything together: backpropagation through a small convolutional network (a diagnostic) | {{points_n:backward_cnn}} |
# | 5 | train the network on the digits: at least 95% test accuracy | {{points_n:accuracy}} |
#
# Replace each `raise NotImplementedError()` with your code. Do not rename the classes or
# functions, and do not edit the locked cells: the grader uses them as they are. The visible
# part of a test runs when you run its cell; more cases are checked when your notebook is
# graded.

# %% [given] id=imports
import time
from dataclasses import dataclass

import numpy as np
import matplotlib.pyplot as plt
from numpy.lib.stride_tricks import sliding_window_view

# %% [markdown] id=framework-note
# ## The EDF framework and components (given)
#
# The core and the components are the solutions of the tensor assignment. As always,
# `forward()` sets `self.value` from the operands' values, and `backward()` adds
# `self.grad` (the upstream gradient $\bar v = \partial \ell / \partial v$, an array of the
# value's shape) contracted with the local Jacobian into each operand's `grad`, with `+=`.

# %% [given] id=edf-core from=reference.core#graph_lists reference.core:clear_compgraph,as_float_array,zeros_like_grad,unbroadcast,Input,Parameter,CompNode,Forward,Backward,SGD

# %% [given] id=edf-components from=reference.operations:Add,ReLU,VDot,SoftmaxCrossEntropy

# %% [markdown] id=images
# ## Images as tensors
#
# A minibatch of images is a 4-d array of shape `(N, C, H, W)`: $N$ examples, $C$ *channels*
# (1 for a grey-scale image, 3 for colour, and after a convolutional layer one channel per
# filter), $H$ rows and $W$ columns. Entry $x[n, c, r, q]$ is pixel $(r, q)$ of channel $c$ of
# example $n$.
#
# ## Task 1 ({{points:conv2d}}): `Conv2D`
#
# `Conv2D(x, W, b, stride=1, padding=0)` has $F$ filters. Its weights `W` have shape
# `(F, C, KH, KW)`: filter $f$ is a small `(C, KH, KW)` block that spans all input channels,
# and `b` of shape `(F,)` holds one bias per filter. The layer slides every filter over the
# image and, at each position, takes the sum of the filter times the window of the image
# under it:
#
# $$v[n, f, i, j] = b[f] + \sum_{c=0}^{C-1} \sum_{k=0}^{KH-1} \sum_{l=0}^{KW-1}
#     W[f, c, k, l]\; x[n, c,\, i s + k,\, j s + l] .$$
#
# - The **stride** $s$ is the step between window positions: with $s = 2$ only every second
#   position is used and the output is about half as large.
# - The **padding** $p$ surrounds the image with $p$ rows and columns of zeros on each side
#   before sliding, so that windows can be centred on the border pixels too. The formula
#   above indexes this padded image (of shape `(N, C, H + 2p, W + 2p)`).
# - The number of window positions along the rows is
#   $OH = \lfloor (H + 2p - KH) / s \rfloor + 1$, and likewise $OW$ along the columns: the
#   last window must fit entirely into the padded image. The value has shape `(N, F, OH, OW)`.
#
# Strictly speaking this is a *cross-correlation*: a convolution in the mathematical sense
# flips the kernel ($W[f, c, KH-1-k, KW-1-l]$). Every deep-learning framework computes the
# cross-correlation and calls it convolution, since a learned kernel can just as well be
# learned flipped. Do **not** flip `W`.
#
# **Backward.** Contract $\bar v$ (shape `(N, F, OH, OW)`) with the Jacobian, as for every
# component. Each output entry depends on the bias of its filter with derivative 1, on each
# weight $W[f, c, k, l]$ through the pixel under it, and on each pixel of its window through
# the weight over it. So:
#
# $$\bar b[f] \mathrel{+}= \sum_{n, i, j} \bar v[n, f, i, j], \qquad
#   \bar W[f, c, k, l] \mathrel{+}= \sum_{n, i, j} \bar v[n, f, i, j]\; x[n, c,\, i s + k,\, j s + l],$$
#
# $$\bar x[n, c,\, i s + k,\, j s + l] \mathrel{+}= \sum_{f} \bar v[n, f, i, j]\; W[f, c, k, l]
#   \quad \text{for every } i, j, k, l .$$
#
# The bias and the weights are shared by every position and every example, so, as for the
# bias of a linear layer, their gradients **sum** over the batch and over all positions. In
# $\bar x$ one pixel belongs to several (overlapping) windows and collects a contribution
# from each. $\bar x$ is computed on the *padded* image; the padding is not an operand, so
# its gradient is dropped: cut the padded gradient back to rows and columns $p, \ldots, p + H - 1$.
#
# **Vectorise.** Loops over $n, f, i, j$ in Python take seconds per minibatch. The standard
# trick, *im2col*, copies every window of the padded image into the columns of one matrix
# `cols` of shape `(C * KH * KW, N * OH * OW)`: row $(c, k, l)$, column $(n, i, j)$ holds
# $x[n, c, i s + k, j s + l]$. The whole layer is then one matrix product,
# `W.reshape(F, -1) @ cols` of shape `(F, N * OH * OW)`, reshaped to `(F, N, OH, OW)` and
# transposed to `(N, F, OH, OW)`. Backward is two more products with $\bar v$ laid out as
# `(F, N * OH * OW)`: $\bar W$ is $\bar v$ times `cols` transposed, and the columns' gradient
# `W.reshape(F, -1).T @` $\bar v$ goes back onto the pixels with `col2im`, the adjoint of
# `im2col`, which **adds** each column entry to the pixel it was copied from.
#
# Write the two helpers and then `Conv2D`. In both helpers a loop over the $KH \times KW$
# kernel offsets $(k, l)$ is fine (9 iterations for a 3x3 kernel): offset $(k, l)$ meets the
# rows `k : k + s*(OH-1) + 1 : s` and columns `l : l + s*(OW-1) + 1 : s` of the padded image,
# one strided slice per offset. The given `output_size(n, k, stride, padding)` computes
# $OH$ and $OW$. Keep `cols` from `forward()` in an attribute for `backward()`, and never
# modify `x.value` itself.

# %% [given] id=conv-helpers from=reference.conv:output_size,windows

# %% [solution] id=conv2d-solution from=reference.conv:im2col,col2im,Conv2D keep=__init__,_padded

# %% [code] id=try-conv
# Tiny example: a 1x1x4x4 image and one 2x2 filter that looks for "right minus left".
clear_compgraph()
x = Input(np.arange(16.0).reshape(1, 1, 4, 4))
K = Parameter(np.array([[[[-1.0, 1.0], [-1.0, 1.0]]]]))
c = Parameter(np.zeros(1))
conv = Conv2D(x, K, c)
Forward()
print(conv.value[0, 0])   # every window: (right column - left column) summed = 2

# %% [test] id=conv2d

# %% [markdown] id=pool-task
# ## Task 2 ({{points:maxpool2d}}): `MaxPool2D`
#
# `MaxPool2D(x, size=2, stride=2)` reduces each channel separately: its value is the maximum
# of every `(size, size)` window, with window positions `stride` apart (no padding):
#
# $$v[n, c, i, j] = \max_{0 \le k, l < \text{size}} x[n, c,\, i s + k,\, j s + l],$$
#
# of shape `(N, C, OH, OW)` with $OH = \lfloor (H - \text{size}) / s \rfloor + 1$. With the
# defaults it halves the height and width, keeping the strongest response of each 2x2 block.
#
# **Backward.** The maximum of a window depends only on the entry that attains it: nudging
# that entry moves the maximum by the same amount (derivative 1), nudging any other entry
# changes nothing (derivative 0). So $\bar v[n, c, i, j]$ goes, whole, to the position of the
# window's maximum, the *argmax*, and the other entries of the window get nothing from it. Not
# to all of them, and not an average: that would be the gradient of a sum or a mean, not of a
# max. When windows overlap (`stride < size`), an entry that is the maximum of several
# windows receives all their contributions. (At a tie the maximum is not differentiable; the
# tests avoid ties.)
#
# Vectorised: the given `windows(x, size, size, stride)` is a view (no copy) of every window,
# of shape `(N, C, OH, OW, size, size)`. Reshape it to `(N, C, OH, OW, size * size)`, take
# `argmax` over the last axis in forward and keep it, and in backward turn each argmax into
# the row and column of the input it came from. `np.add.at` or `np.bincount` (with `weights`) add the upstream
# values into those positions, overlaps included.

# %% [solution] from=reference.conv:MaxPool2D keep=__init__

# %% [test] id=maxpool2d

# %% [markdown] id=flatten-task
# ## Task 3 ({{points:flatten}}): `Flatten`
#
# Between the convolutional part and a linear layer, each example's feature maps are laid out
# as one row: `(N, C, H, W)` becomes `(N, C * H * W)`. Nothing is computed, so $\bar x$ is
# $\bar v$ with $x$'s shape.

# %% [solution] from=reference.conv:Flatten keep=__init__

# %% [test] id=flatten

# %% [markdown] id=together
# ## Task 4 (a diagnostic, {{points:backward_cnn}}): all together
#
# The last test builds a small convolutional network from your components,
#
# `Conv2D` → `ReLU` → `MaxPool2D` → `Flatten` → `Add(VDot(·, W), b)` → `SoftmaxCrossEntropy`,
#
# runs `Backward` and checks the loop invariant after every reverse step: once the components
# in a suffix of `components` have run `backward()`, every node's `grad` must be the
# derivative of the loss of the program made of those components only. A failure names the
# first component whose `backward()` broke it. It earns no points: `Backward` is given, so what
# it finds is a bug of one of your components, which that component's own test already grades.

# %% [test] id=backward_cnn

# %% [markdown] id=data
# ## Task 5 ({{points:accuracy}}): a convolutional network on the digits
#
# The digits are scikit-learn's copy of the UCI handwritten digits (1797 grey-scale images of
# $8 \times 8$ pixels), scaled to $[0, 1]$, shuffled with a fixed seed, with 360 held out as a
# test set. They come as rows of 64 pixels; `as_images` turns rows into one-channel images of
# shape `(N, 1, 8, 8)`. Keep the `load-data` cell as it is and do not load the data anywhere
# else: when grading, this cell is the one that supplies the data.

# %% [given] id=load-data from=reference.mlp:load_digits_split
X_train, y_train, X_test, y_test = load_digits_split(seed=0)
print(X_train.shape, y_train.shape, X_test.shape, y_test.shape)

# %% [given] id=network from=reference.cnn:as_images,CNN,build_cnn

# %% [markdown] id=network-note
# `build_cnn(filters, seed)` above builds the network of task 4 at full size: 16 filters of
# $3 \times 3$ with padding 1 keep the $8 \times 8$ size, the max-pool halves it to
# $4 \times 4$, and a linear layer maps the $16 \cdot 4 \cdot 4 = 256$ features to the 10
# logits. `CNN.predict` runs it in batches.
#
# `train_cnn_epoch(model, X, y, eta, batch_size, rng)` below runs one epoch of minibatch SGD,
# as you wrote it for the MLP: it visits the training examples in the order of a fresh random
# permutation, cuts it into batches of about `batch_size`, and for each batch sets the inputs,
# runs `Forward()`, `Backward` and `SGD(eta)`. It returns the mean of the batch losses. The
# gradients it follows are your components' own.

# %% [given] id=train-epoch from=reference.cnn:train_cnn_epoch

# %% [code] id=experiment-train
images_train, images_test = as_images(X_train), as_images(X_test)
X_tr, y_tr, X_val, y_val = images_train[:-300], y_train[:-300], images_train[-300:], y_train[-300:]
fig, ax = plt.subplots(figsize=(6, 4))
for eta in [0.05, 0.2]:
    model = build_cnn(filters=8, seed=0)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    accuracies = []
    for epoch in range(5):
        train_cnn_epoch(model, X_tr, y_tr, eta, 32, rng)
        accuracies.append(model.accuracy(X_val, y_val))
    print(f"eta = {eta}: validation accuracy {accuracies[-1]:.3f} in {time.perf_counter() - start:.1f} s")
    ax.plot(range(1, 6), accuracies, "o-", label=f"eta = {eta}")
ax.set(xlabel="epoch", ylabel="validation accuracy", title="A small CNN on the digits")
ax.legend()
plt.show()

# %% [markdown] id=final-model-task
# Now train your final network, `final_model`, on the **whole** training set and define
# `predict(X)`, which takes rows of 64 pixels (like `X_test`) and returns the digits
# `final_model` predicts as an integer array of shape `(len(X),)`. The test measures it on the test set and requires at least 0.95. The
# grader does more, in two halves of equal weight: it trains a fresh `build_cnn(16, seed=s)` with
# the given `train_cnn_epoch` (so with your components) (8 epochs, `eta = 0.3`, batches of 32, `rng = np.random.default_rng(s + 1)`)
# from its own seed `s`, on digits it draws (rotated or mirrored, the labels renamed), and
# measures the trained weights on digits your notebook never had (at least 0.92; the weights
# must change by `SGD(eta)` alone); and it sets known weights into your final network and
# checks that `predict` follows them (if your components cannot run the network, it checks
# `predict` on a network of its own, bound as `final_model`). When `predict` follows the
# network but the retrained network does not learn, the fault is in your components: their
# own tests charge it, and this test says so without taking the points again. Without a
# `predict` that follows the network, neither half counts. The reference network (16 filters, `eta = 0.2`, 15 epochs
# of batches of 32) reaches about 0.98 in a few seconds. Do not build another graph after this
# cell.

# %% [solution] id=final-model-solution
### BEGIN SOLUTION
final_model = build_cnn(filters=16, seed=0)
final_rng = np.random.default_rng(1)
for epoch in range(15):
    final_loss = train_cnn_epoch(final_model, as_images(X_train), y_train, 0.2, 32, final_rng)
print("final training loss", final_loss)
### END SOLUTION

# %% [solution] id=predict-solution
def predict(X):
    """The trained network's predicted digit (an int in 0..9) for each row of 64 pixels of X."""
    ### BEGIN SOLUTION
    return final_model.predict(as_images(X))
    ### END SOLUTION

# %% [test] id=accuracy
