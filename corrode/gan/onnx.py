"""An ONNX Runtime copy of a translator's clean -> level generators (`corrode render --engine onnx`).

The generators are exported in memory (TorchScript exporter, batch size dynamic) once per level at
load time, then run by ONNX Runtime on the CPU. Same interface as `corrode.translate.Translator`:
`image_size`, `levels`, `to_level(images, level)`. onnxruntime is optional: without it this engine
says how to get it. benchmarks/render.py measures it against torch eager and bf16 autocast.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from corrode.errors import UsageError


class _ToLevel(nn.Module):
    """[0, 1] clean cars -> [0, 1] cars at one level, as Translator.to_level computes it."""

    def __init__(self, generators: nn.Module, source: str, target: str) -> None:
        super().__init__()
        self.generators = generators
        self.source = source
        self.target = target

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.generators.translate(images * 2 - 1, self.source, self.target)
        return ((out + 1) / 2).clamp(0, 1)


def export_level(generators: nn.Module, source: str, target: str, size: int) -> bytes:
    """The ONNX graph (bytes) of one translation at `size` x `size`, any batch size."""
    module = _ToLevel(generators, source, target).eval().float().cpu()
    example = torch.rand(1, 3, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter warns about instance norm's training flag and shape inference; both are moot here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=["images"],
            output_names=["out"],
            dynamic_axes={"images": {0: "batch"}, "out": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


@dataclass
class OnnxTranslator:
    image_size: int
    levels: tuple[str, ...]
    sessions: dict[str, Any]

    @classmethod
    def from_translator(cls, translator: Any, level_names: Sequence[str]) -> OnnxTranslator:
        try:
            import onnxruntime
        except ImportError as exc:
            raise UsageError("--engine onnx needs ONNX Runtime: pip install 'corrode[onnx]'") from exc
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        sessions = {}
        generators = translator.generators
        for name in level_names:
            graph = export_level(generators, translator.clean, name, int(translator.image_size))
            sessions[name] = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        return cls(int(translator.image_size), tuple(level_names), sessions)

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor:
        """`(B, 3, S, S)` float [0, 1] clean cars on black -> the same cars at `level`."""
        if level not in self.sessions:
            raise UsageError(f"the ONNX engine was built for {', '.join(self.sessions)}, not {level!r}")
        batch = images.detach().float().cpu().contiguous().numpy()
        (out,) = self.sessions[level].run(None, {"images": batch})
        return torch.from_numpy(out)
