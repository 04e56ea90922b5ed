"""Diagnoses of the classic convolution mistakes, each decided from the numbers of a failed
``component`` case of ``Conv2D`` or ``MaxPool2D``, never guessed:

- ``conv_output_shape``: the value's spatial shape is not floor((n + 2p - k) / s) + 1 (the
  message names the wrong formula it matches, when one does);
- ``flipped_kernel``: the value equals the stated formula with the kernel flipped (a true
  convolution instead of the cross-correlation);
- ``padding_backward``: x.grad has the padded image's shape, equals the padded grad cut at
  the wrong offset, or is wrong only in the border rows/columns whose windows reach the padding;
- ``pool_grad_every_element``: x.grad equals the upstream grad sent to every element of each
  window (or that divided by the window size: average pooling's gradient).

``conv_refine(spec, record, expected, verdict)`` is called by the component judge on every
verdict; it returns the verdict unchanged unless the evidence for one of these holds.
"""
import numpy as np

from .base import DIAGNOSES, CaseResult, _fail
from .compare import _close
from .conv_contract import _offset_slices, conv2d_formula, conv_out_size
from .types import ComponentRecord, ComponentSpec

DIAGNOSES.update({
    "conv_output_shape": ("wrong output size of a convolution or pooling",
                          "Along each spatial axis there are floor((n + 2p - k) / s) + 1 window positions "
                          "(n input size, k kernel size, p padding, s stride): use integer division and the +1."),
    "flipped_kernel": ("kernel flipped: a true convolution instead of the cross-correlation",
                       "Conv2D slides W over the image as it is: v[n, f, i, j] = b[f] + sum W[f, c, k, l] "
                       "x[n, c, i*s + k, j*s + l]; do not flip W (no W[:, :, ::-1, ::-1])."),
    "padding_backward": ("padding mishandled in backward",
                         "Accumulate x_bar on the padded image (the windows of forward), then keep only the "
                         "original pixels, x_bar_pad[:, :, p:p+H, p:p+W], for x.grad."),
    "pool_grad_every_element": ("pooling gradient sent to every element of the window",
                                "Only the window's maximum reaches the output: route v_bar to the argmax of "
                                "each window and give the other entries nothing."),
})

_CONV_TARGETS = ("Conv2D", "MaxPool2D")


def conv_refine(spec: ComponentSpec, record: ComponentRecord, expected: dict, verdict: CaseResult) -> CaseResult:
    """A more specific diagnosis of a failed Conv2D/MaxPool2D case when the numbers show one."""
    if verdict.passed or spec.get("target") not in _CONV_TARGETS or not isinstance(record, dict):
        return verdict
    try:
        return _conv_evidence(spec, record, expected, verdict) or verdict
    except Exception:  # evidence is best effort on an untrusted record: keep the plain verdict
        return verdict


def _conv_evidence(spec: dict, rec: dict, exp: dict, verdict: CaseResult) -> CaseResult | None:
    name, kw = spec["target"], dict(spec.get("kwargs") or {})
    ops = [np.asarray(o, dtype=float) for o in spec["operands"]]
    want = np.asarray(exp["value"])
    value = rec.get("value")
    where = f"{name} (case {spec.get('case', 0) + 1})"
    if verdict.diagnosis == "forward_wrong" and isinstance(value, np.ndarray):
        if value.shape != want.shape:
            return _shape_evidence(name, kw, ops, value.shape, want.shape, where)
        if name == "Conv2D" and value.dtype.kind == "f":
            flipped = conv2d_formula(ops[0], ops[1][:, :, ::-1, ::-1], ops[2], **kw)
            if not _close(flipped, want, 1e-6, 1e-9) and _close(value, flipped, 1e-6, 1e-7 * (1 + np.max(np.abs(want)))):
                return _fail("flipped_kernel", f"{name}.forward ({where})",
                             "self.value equals the formula with the kernel flipped in both spatial axes.",
                             {"component": name, "evidence": "value == cross-correlation with W[:, :, ::-1, ::-1]"})
        return None
    grads = rec.get("grads")
    if not isinstance(grads, list) or not grads or not isinstance(grads[0], np.ndarray):
        return None
    g = grads[0].astype(float)
    x = ops[0]
    up = np.asarray(spec["upstream"], dtype=float)
    at = f"{name}.backward ({where}), operand x"
    if name == "Conv2D":
        return _padding_evidence(x, ops[1], up, g, exp, kw, at)
    if g.shape == x.shape:
        every = _pool_every(x.shape, up, int(kw.get("size", 2)), int(kw.get("stride", 2)))
        atol = float(exp.get("atol", 1e-8))
        for alt, how in ((every, "to every element of its window"), (every / kw.get("size", 2) ** 2,
                                                                      "averaged over its window")):
            if _close(g, alt, 1e-6, atol) and not _close(alt, np.asarray(exp["grads"][0]), 1e-6, atol):
                return _fail("pool_grad_every_element", at, f"x.grad equals the upstream grad sent {how}.",
                             {"component": name, "operand": "x", "evidence": f"x.grad == v_bar sent {how}"})
    return None


def _shape_evidence(name: str, kw: dict, ops: list, got: tuple, want: tuple, where: str) -> CaseResult | None:
    if len(got) != 4 or got[:2] != want[:2]:
        return None
    if name == "Conv2D":
        k, s, p = ops[1].shape[2:], int(kw.get("stride", 1)), int(kw.get("padding", 0))
    else:
        size, s, p = int(kw.get("size", 2)), int(kw.get("stride", 2)), 0
        k = (size, size)
    n = ops[0].shape[2:]
    wrong = {"without the +1": lambda n, k: (n + 2 * p - k) // s,
             "ignoring the stride": lambda n, k: n + 2 * p - k + 1,
             "ignoring the padding": lambda n, k: (n - k) // s + 1,
             "rounding up instead of down": lambda n, k: -(-(n + 2 * p - k) // s) + 1,
             "dividing the input size by the stride": lambda n, k: (n + 2 * p) // s}
    matches = [how for how, f in wrong.items() if tuple(f(a, b) for a, b in zip(n, k)) == tuple(got[2:])]
    formula = f"floor(({n[0]} + 2*{p} - {k[0]}) / {s}) + 1 = {want[2]} rows"
    because = f" It matches the size computed {matches[0]}." if matches else ""
    return _fail("conv_output_shape", f"{name}.forward ({where})",
                 f"self.value has shape {tuple(got)}, expected {tuple(want)} ({formula}).{because}",
                 {"component": name, "expected_shape": list(want), "got_shape": list(got),
                  "evidence": matches[0] if matches else "spatial shape differs"})


def _conv_x_bar_padded(x_shape: tuple, W: np.ndarray, up: np.ndarray, s: int, p: int) -> np.ndarray:
    """x_bar on the zero-padded image: every kernel offset's contribution, padding kept."""
    N, C, H, Wd = x_shape
    oh, ow = up.shape[2:]
    g = np.zeros((N, C, H + 2 * p, Wd + 2 * p))
    for k in range(W.shape[2]):
        for l in range(W.shape[3]):
            g[_offset_slices(k, l, oh, ow, s)] += np.einsum("nfhw,fc->nchw", up, W[:, :, k, l])
    return g


def _padding_evidence(x: np.ndarray, W: np.ndarray, up: np.ndarray, g: np.ndarray, exp: dict, kw: dict,
                      at: str) -> CaseResult | None:
    s, p = int(kw.get("stride", 1)), int(kw.get("padding", 0))
    if p == 0:
        return None
    H, Wd = x.shape[2:]
    details = {"component": "Conv2D", "operand": "x"}
    padded = _conv_x_bar_padded(x.shape, W, up, s, p)
    if g.shape == padded.shape:
        return _fail("padding_backward", at, f"x.grad has the padded image's shape {g.shape}, expected {x.shape}.",
                     {**details, "expected_shape": list(x.shape), "got_shape": list(g.shape),
                      "evidence": "x.grad shape == padded shape"})
    if g.shape != x.shape:
        return None
    want = np.asarray(exp["grads"][0])
    atol = float(exp.get("atol", 1e-8))
    for r0, c0 in ((0, 0), (2 * p, 2 * p), (0, 2 * p), (2 * p, 0)):
        if _close(g, padded[:, :, r0:r0 + H, c0:c0 + Wd], 1e-6, atol):
            return _fail("padding_backward", at,
                         f"x.grad equals the padded image's grad cut at rows {r0}.., columns {c0}.. "
                         f"instead of {p}.., {p}...", {**details, "evidence": f"crop offset ({r0}, {c0})"})
    bad = ~np.isclose(g, want, rtol=1e-5, atol=atol)
    band = np.ones(x.shape[2:], dtype=bool)
    kh, kw_ = W.shape[2:]
    band[kh - 1:H - (kh - 1), kw_ - 1:Wd - (kw_ - 1)] = False  # pixels whose windows reach the padding
    if bad.any() and not bad[..., ~band].any():
        return _fail("padding_backward", at,
                     "x.grad is right in the interior and wrong only in the border rows/columns "
                     "(the pixels whose windows reach the padding).",
                     {**details, "evidence": "wrong entries only in the border band"})
    return None


def _pool_every(x_shape: tuple, up: np.ndarray, size: int, s: int) -> np.ndarray:
    """The upstream grad of each window added to every element of that window."""
    oh, ow = up.shape[2:]
    g = np.zeros(x_shape)
    for a in range(size):
        for c in range(size):
            g[_offset_slices(a, c, oh, ow, s)] += up
    return g
