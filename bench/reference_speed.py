"""One training step (forward + backward + SGD) of a 784-256-256-10 MLP at batch 128.

Reference EDF vs the same model in PyTorch on the CPU, float32, random data,
measured alternately in one run (so both see the same machine state). Prints the
median step time of each and the ratio EDF / PyTorch (target: <= 1.5).
Run: .venv/bin/python bench/reference_speed.py   (torch: pip install torch==2.13.0)

PyTorch's OpenMP workers spin-wait after each step by default; alternating with
NumPy's OpenBLAS threads on 2 cores, each framework's idle threads then steal the
cores from the other (EDF measured 5.1 ms instead of 2.9 ms). The benchmark sets
OMP_WAIT_POLICY=PASSIVE before torch is imported so each step gets the machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from reference.mlp import build_mlp, train_step

SIZES, BATCH, ETA = (784, 256, 256, 10), 128, 0.01


def edf_step_fn(X, y):
    model = build_mlp(SIZES, "relu", seed=0, dtype=np.float32)
    return lambda: train_step(model, X, y, ETA), model


def torch_step_fn(X, y, edf_model):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.manual_seed(0)
    layers = []
    for i, (W, b) in enumerate(edf_model.layers):
        lin = torch.nn.Linear(*W.value.shape)
        with torch.no_grad():  # same initial weights as EDF
            lin.weight.copy_(torch.from_numpy(W.value.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.value.copy()))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(edf_model.layers) - 1 else [])
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=ETA)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(net(Xt), yt)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step, torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], size=BATCH)
    edf_step, model = edf_step_fn(X, y)
    try:
        torch_step, torch = torch_step_fn(X, y, model)
        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch_step = None
        print("torch is not importable: timing EDF only (pip install torch==2.13.0 to compare)")

    # the same initial weights: the first losses agree (before either has stepped)
    if torch_step is not None:
        first_edf, first_torch = edf_step(), torch_step()
        print(f"first-step loss: EDF {first_edf:.5f}  PyTorch {first_torch:.5f}")

    times = {"EDF": [], "PyTorch": []}
    for i in range(args.warmup + args.steps):
        for name, step in (("EDF", edf_step), ("PyTorch", torch_step)):
            if step is None:
                continue
            t0 = time.perf_counter()
            step()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t0)

    print(f"one SGD step, MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, "
          f"median of {args.steps} alternating steps")
    med = {k: statistics.median(v) for k, v in times.items() if v}
    for name, t in med.items():
        print(f"  {name:8s} {t * 1e3:8.2f} ms")
    if "PyTorch" in med:
        print(f"  ratio EDF/PyTorch: {med['EDF'] / med['PyTorch']:.2f}  (target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
