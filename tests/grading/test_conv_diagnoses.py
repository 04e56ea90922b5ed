"""The classic convolution mistakes, graded by conv_edf's hidden suite in process: each gets its
diagnosis from the evidence in the numbers, and the reference and a correct-but-different
implementation get full marks."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

import reference
from grader.checks import hidden, public as P

SUITE = Path(__file__).resolve().parents[2] / "assignments" / "conv_edf" / "suite.toml"


def suite_tests() -> dict:
    data = tomllib.loads(SUITE.read_text())
    return {t["id"]: {**t, "assignment": data["assignment"]} for t in data["test"]}


def student_ns(source: str = "") -> dict:
    """The reference's names, overridden by ``source`` (a student's cell)."""
    ns = {name: getattr(reference, name) for name in reference.__all__}
    ns.update(np=np, CompNode=reference.CompNode, output_size=reference.conv.output_size, im2col=reference.conv.im2col)
    exec(compile(source, "<student>", "exec"), ns)
    return ns


FLIPPED = """
class Conv2D(Conv2D):
    def forward(self):
        F, C, KH, KW = self.W.value.shape
        N, _, H, W = self.x.value.shape
        s, p = self.stride, self.padding
        oh, ow = output_size(H, KH, s, p), output_size(W, KW, s, p)
        self.cols = im2col(self._padded(), KH, KW, s)
        kernel = self.W.value[:, :, ::-1, ::-1]  # a convolution flips the kernel, says the textbook
        out = kernel.reshape(F, -1) @ self.cols
        self.value = out.reshape(F, N, oh, ow).transpose(1, 0, 2, 3) + self.b.value[:, None, None]
"""

# the padded image's grad cut at the top-left corner instead of at (p, p)
PAD_CROP = """
class Conv2D(Conv2D):
    def backward(self):
        saved, H, W = self.x.grad, *self.x.value.shape[2:]
        p = self.padding
        self.x.grad = np.zeros((*self.x.value.shape[:2], H + 2 * p, W + 2 * p))
        self.padding = 0
        xv = self.x.value
        self.x.value = np.pad(xv, ((0, 0), (0, 0), (p, p), (p, p)))
        super().backward()
        self.x.value, self.padding = xv, p
        self.x.grad = saved + self.x.grad[:, :, :H, :W]
"""

# x_bar left on the padded image (and assigned, so no broadcasting error hides it)
PAD_SHAPE = PAD_CROP.replace("saved + self.x.grad[:, :, :H, :W]", "self.x.grad")

# output size without the +1 ... written as a student would: H // s windows
STRIDE = """
class Conv2D(Conv2D):
    def forward(self):
        super().forward()
        H, W = self.x.value.shape[2:]
        p, s, KH = self.padding, self.stride, self.W.value.shape[2]
        oh = (H + 2 * p - KH) // s
        self.value = self.value[:, :, :oh, :oh]
"""

POOL_EVERY = """
class MaxPool2D(MaxPool2D):
    def backward(self):
        k, s = self.size, self.stride
        OH, OW = self.grad.shape[2:]
        g = np.zeros(self.x.value.shape)
        for a in range(k):
            for b in range(k):
                g[:, :, a:a + s * (OH - 1) + 1:s, b:b + s * (OW - 1) + 1:s] += self.grad
        self.x.grad += g
"""

POOL_MEAN = POOL_EVERY.replace("+= self.grad\n", "+= self.grad / (k * k)\n")

# correct but different: explicit loops over output pixels, np.add.at for pooling
LOOPS = """
class Conv2D(CompNode):
    def __init__(self, x, W, b, stride=1, padding=0):
        super().__init__()
        self.x, self.W, self.b, self.stride, self.padding = x, W, b, stride, padding

    def forward(self):
        p, s = self.padding, self.stride
        xp = np.pad(self.x.value, ((0, 0), (0, 0), (p, p), (p, p)))
        F, C, KH, KW = self.W.value.shape
        OH, OW = (xp.shape[2] - KH) // s + 1, (xp.shape[3] - KW) // s + 1
        self.value = np.zeros((xp.shape[0], F, OH, OW))
        for i in range(OH):
            for j in range(OW):
                patch = xp[:, :, i * s:i * s + KH, j * s:j * s + KW]
                self.value[:, :, i, j] = np.einsum("nckl,fckl->nf", patch, self.W.value) + self.b.value

    def backward(self):
        p, s = self.padding, self.stride
        xp = np.pad(self.x.value, ((0, 0), (0, 0), (p, p), (p, p)))
        gp = np.zeros(xp.shape)
        F, C, KH, KW = self.W.value.shape
        for i in range(self.grad.shape[2]):
            for j in range(self.grad.shape[3]):
                g = self.grad[:, :, i, j]
                self.W.grad += np.einsum("nf,nckl->fckl", g, xp[:, :, i * s:i * s + KH, j * s:j * s + KW])
                gp[:, :, i * s:i * s + KH, j * s:j * s + KW] += np.einsum("nf,fckl->nckl", g, self.W.value)
        self.b.grad += self.grad.sum(axis=(0, 2, 3))
        self.x.grad += gp[:, :, p:gp.shape[2] - p, p:gp.shape[3] - p]
"""


def grade(source: str, test_id: str):
    return hidden.run_hidden(student_ns(source), suite_tests()[test_id])


@pytest.mark.parametrize("test_id", ["conv2d", "maxpool2d", "flatten", "backward_cnn"])
def test_reference_and_loops_pass(test_id):
    assert grade("", test_id).score == 1.0
    assert grade(LOOPS, test_id).score == 1.0


@pytest.mark.parametrize("source,test_id,diagnosis,evidence", [
    (FLIPPED, "conv2d", "flipped_kernel", "flipped in both spatial axes"),
    (PAD_CROP, "conv2d", "padding_backward", "cut at rows 0.., columns 0.."),
    (PAD_SHAPE, "conv2d", "padding_backward", "the padded image's shape"),
    (STRIDE, "conv2d", "conv_output_shape", "without the +1"),
    (POOL_EVERY, "maxpool2d", "pool_grad_every_element", "to every element of its window"),
    (POOL_MEAN, "maxpool2d", "pool_grad_every_element", "averaged over its window"),
])
def test_classic_mistakes_are_diagnosed_from_the_numbers(source, test_id, diagnosis, evidence):
    r = grade(source, test_id)
    assert not r.passed and r.score < 1.0
    assert r.diagnosis == diagnosis, r.message
    assert evidence in r.message
    assert r.details["component"] in ("Conv2D", "MaxPool2D")
    # the public (numeric) check reaches the same verdict on the visible cases where they fail
    pub = P.run_public(student_ns(source), suite_tests()[test_id], "hidden")
    assert pub.diagnosis == diagnosis and pub.score == r.score


def test_a_flipped_kernel_passes_only_where_flipping_changes_nothing():
    """A 1x1 kernel is its own flip: those cases pass, every other fails."""
    r = grade(FLIPPED, "conv2d")
    t = suite_tests()["conv2d"]
    one_by_one = sum(1 for case in t["hidden"]["shapes"] if case[1][2:] == [1, 1])
    assert r.score == pytest.approx(one_by_one / len(t["hidden"]["shapes"]))


def test_a_mistake_breaks_the_loop_invariant_at_its_component():
    r = grade(POOL_EVERY, "backward_cnn")
    assert not r.passed and r.details.get("component") == "MaxPool2D", r.message
    assert r.score == 0.0


def test_pooling_samples_have_no_ties():
    for seed in range(50):
        for spec in P.component_specs("MaxPool2D", [[(2, 3, 6, 6)], [(1, 2, 7, 7)]], seed):
            x = np.sort(np.ravel(spec["operands"][0]))
            assert np.min(np.diff(x)) > 0.01
