"""Shared helpers for the checks' tests: student namespaces made from the reference."""
from __future__ import annotations

import glob
from grader.authoring.template import tomllib
from pathlib import Path

import numpy as np
import pytest

import reference

ROOT = Path(__file__).resolve().parents[2]


def student_ns(source: str = "", drop=()) -> dict:
    """The reference's public names, overridden by ``source`` (a notebook cell)."""
    ns = {name: getattr(reference, name) for name in reference.__all__}
    ns.update(np=np, CompNode=reference.CompNode, unbroadcast=reference.unbroadcast)
    for name in drop:
        ns.pop(name, None)
    exec(compile(source, "<student>", "exec"), ns)
    return ns


def suites() -> dict:
    out = {}
    for f in sorted(glob.glob(str(ROOT / "assignments" / "*" / "suite.toml"))):
        with open(f, "rb") as fh:
            s = tomllib.load(fh)
        for t in s["test"]:
            t["assignment"] = s["assignment"]
        out[s["assignment"]] = s["test"]
    return out


@pytest.fixture
def ref_ns():
    return student_ns()
