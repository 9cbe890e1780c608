"""Loading render's models once, and choosing their precision and engine for this machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corrode.errors import UsageError
from corrode.render.config import DEMO_NOTE, RenderConfig
from corrode.segment import Segments
from corrode.translate import Translates


@dataclass
class Models:
    translator: Translates
    segmenter: Segments | None
    notes: list[str]


def load_models(cfg: RenderConfig, *, need_segmenter: bool) -> Models:
    """The generator (and the segmenter unless masks are given) named by `cfg`, loaded once."""
    from corrode.locate import DEMO, find_model

    notes = []
    gan_path = find_model(cfg.gan, "gan")
    seg_value = cfg.seg if cfg.seg is not None else (DEMO if cfg.gan == DEMO else None)
    # Find both before loading either, so a missing model is reported at once.
    seg_path = find_model(seg_value, "seg") if need_segmenter else None
    from corrode.translate import Translator

    precision = generator_precision(cfg)
    translator = Translator.load(gan_path, device=cfg.device, precision=precision)
    if cfg.gan == DEMO:
        notes.append(f"--gan demo: {DEMO_NOTE}")
    missing = [name for name in cfg.level_names if name not in translator.levels]
    if missing:
        raise UsageError(f"{gan_path}: this model cannot render {', '.join(missing)}")
    engine: Translates = fast_translator(translator, cfg.engine, cfg.level_names)
    segmenter: Segments | None = None
    if need_segmenter:
        from corrode.segment import Segmenter

        # `--gan demo` brings the demo segmenter along unless --seg says otherwise.
        segmenter = Segmenter.load(seg_path, device=cfg.device, precision=fast_precision(cfg))
        if seg_value == DEMO and cfg.gan != DEMO:
            notes.append(f"--seg demo: {DEMO_NOTE}")
    return Models(engine, segmenter, notes)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): then autocast roughly halves
    the generator's time; elsewhere bf16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fast_precision(cfg: RenderConfig) -> str:
    """`--precision auto` on a CPU with native bf16 means bf16 autocast (measured ~2x faster than
    fp32 in benchmarks/render.py, about one grey level of difference); otherwise as given."""
    if cfg.precision != "auto":
        return cfg.precision
    from corrode.device import choose_device

    if choose_device(cfg.device).type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return cfg.precision


def generator_precision(cfg: RenderConfig) -> str:
    """The generator's precision: fp32 when ONNX Runtime runs it, else `fast_precision`."""
    return "fp32" if cfg.engine == "onnx" else fast_precision(cfg)


def fast_translator(translator: Translates, engine: str, level_names: Sequence[str]) -> Translates:
    """The translator itself (`torch`, and `auto`: bf16 autocast where the CPU has it beat ONNX
    Runtime in benchmarks/render.py), or an ONNX Runtime copy of its generators (`onnx`)."""
    if engine in ("auto", "torch"):
        return translator
    from corrode.gan.onnx import OnnxTranslator

    return OnnxTranslator.from_translator(translator, level_names)


def automatic_batch_size(device: str) -> int:
    """Photos per generator call: 1 on the CPU (measured faster than 8 there), 8 on a GPU."""
    from corrode.device import choose_device

    return 8 if choose_device(device).type == "cuda" else 1
