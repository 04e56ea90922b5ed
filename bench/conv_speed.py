"""Conv2D forward + backward: the reference EDF component vs PyTorch on the CPU.

Same shapes and values, float32: x (32, 8, 16, 16), W (16, 8, 3, 3), b (16,), stride 1,
padding 1, a random upstream gradient. Measured alternately in one run (both see the same
machine state); prints the median time of each and the ratio EDF / PyTorch (aim: <= 2).
Checks first that both compute the same value and gradients.
Run: .venv/bin/python bench/conv_speed.py   (torch: pip install torch==2.13.0)

Both run on one thread (``--threads``; NumPy's BLAS threads are fixed before NumPy is
imported): a convolution layer of this size is too small to gain from threads, and on a
shared, loaded machine OpenBLAS's threads made the EDF step 13x slower (345 ms instead of
25 ms). OMP_WAIT_POLICY=PASSIVE is set before torch is imported, as in
bench/reference_speed.py: PyTorch's spinning OpenMP workers would otherwise steal the cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

THREADS = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--threads=")), "1")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402 (after the thread settings)

from reference.conv import Conv2D  # noqa: E402
from reference.core import Input, Parameter, clear_compgraph  # noqa: E402

N, C, HW, F, K, STRIDE, PAD = 32, 8, 16, 16, 3, 1, 1


def edf_fn(x, W, b, g):
    """One forward + backward of the reference Conv2D (grads zeroed as Backward would)."""
    clear_compgraph()
    xi, Wp, bp = Input(x), Parameter(W), Parameter(b)
    conv = Conv2D(xi, Wp, bp, stride=STRIDE, padding=PAD)

    def step():
        for node in (xi, Wp, bp):
            node.grad = np.zeros_like(node.value)
        conv.forward()
        conv.grad = g
        conv.backward()
        return conv.value, xi.grad, Wp.grad, bp.grad

    return step


def torch_fn(x, W, b, g):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    xt = torch.from_numpy(x).requires_grad_()
    Wt = torch.from_numpy(W).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    gt = torch.from_numpy(g)

    def step():
        for t in (xt, Wt, bt):
            t.grad = None
        v = torch.nn.functional.conv2d(xt, Wt, bt, stride=STRIDE, padding=PAD)
        v.backward(gt)
        return v.detach().numpy(), xt.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()

    return step, torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", default=THREADS, help="threads of each framework (--threads=N)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, C, HW, HW)).astype(np.float32)
    W = rng.normal(0, 0.3, size=(F, C, K, K)).astype(np.float32)
    b = rng.normal(size=F).astype(np.float32)
    out = (HW + 2 * PAD - K) // STRIDE + 1
    g = rng.normal(size=(N, F, out, out)).astype(np.float32)
    edf_step = edf_fn(x, W, b, g)
    try:
        torch_step, torch = torch_fn(x, W, b, g)
        torch.set_num_threads(int(args.threads))
    except ImportError:
        torch_step = None
        print("torch is not importable: timing EDF only (pip install torch==2.13.0 to compare)")

    if torch_step is not None:  # the same numbers, or the timing means nothing
        for name, a, t in zip(("value", "x.grad", "W.grad", "b.grad"), edf_step(), torch_step()):
            err = float(np.max(np.abs(a - t)) / (1 + np.max(np.abs(t))))
            if err > 1e-4:
                raise SystemExit(f"EDF and PyTorch disagree on {name}: relative error {err:.2g}")

    times = {"EDF": [], "PyTorch": []}
    for i in range(args.warmup + args.steps):
        for name, step in (("EDF", edf_step), ("PyTorch", torch_step)):
            if step is None:
                continue
            t0 = time.perf_counter()
            step()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t0)

    print(f"Conv2D forward + backward, x ({N}, {C}, {HW}, {HW}), W ({F}, {C}, {K}, {K}), stride {STRIDE}, "
          f"padding {PAD}, float32, {args.threads} thread(s) each, median of {args.steps} alternating runs")
    med = {k: statistics.median(v) for k, v in times.items() if v}
    for name, t in med.items():
        print(f"  {name:8s} {t * 1e3:8.2f} ms")
    if "PyTorch" in med:
        print(f"  ratio EDF/PyTorch: {med['EDF'] / med['PyTorch']:.2f}  (aim <= 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
