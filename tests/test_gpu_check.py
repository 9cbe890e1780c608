"""benchmarks/gpu_check.py: without CUDA it says so and exits 0; its CPU smoke run goes through every
case (each trainer at two precisions, DDP over two gloo processes, a render batch)."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def gpu_check(monkeypatch):
    # The DDP case spawns processes that import the script by its module name.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(BENCHMARKS), os.environ.get("PYTHONPATH", "")]))
    return importlib.import_module("gpu_check")


def test_without_cuda_it_says_so_and_exits_0(gpu_check, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no CUDA device" in out and "--cpu-smoke" in out


@pytest.mark.slow
def test_cpu_smoke_runs_every_case(gpu_check, capsys) -> None:
    before = torch.get_num_threads()
    try:
        assert gpu_check.main(["--cpu-smoke", "--steps", "2", "--json"]) == 0
    finally:
        torch.set_num_threads(before)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = [line["case"] for line in lines]
    trainers = ("seg", "classifier", "gan")
    expected = [f"{t} {p}" for t in trainers for p in ("bf16", "fp32")]
    expected += [f"{t} bf16 ddp x2" for t in trainers] + ["render bf16 batch 8", "render fp32 batch 8"]
    assert names == expected
    for line in lines:
        assert line["steps"] >= 2 and line["step_ms"] > 0 and line["images_per_s"] > 0, line
        assert line["peak_mib"] is None  # no GPU memory on the CPU
