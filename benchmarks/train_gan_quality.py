"""Which train-gan options keep each car's paint colour and grow rust from mild to severe?

    python benchmarks/train_gan_quality.py --out /tmp/gan-study --cpu-seconds 220
    python benchmarks/train_gan_quality.py --out /tmp/gan-study --only paper,recommended --threads 2

Draws a `corrode synth` set at 64 px (the paper's imbalance: 300 / 65 / 97 / 73, masks applied on the
fly), trains each configuration below with small widths on the same CPU-time budget (CPU seconds of the
process, so runs compare fairly on a shared machine; a run stops at the budget with a checkpoint and can
be continued by running the script again), then translates eight held-out clean cars of known colours
(bright blue first) to every level and measures, over each car's pixels (CIELAB, Delta E 1976):
- `paint dE`: the median colour change per car, averaged: small when the paint colour stays;
- `changed`: the share of car pixels changed by more than 20: should grow mild < moderate < severe,
  towards the synthetic rust coverage of each level (about 0.06 / 0.20 / 0.55);
- `blue dE`: the paint change of the bright blue car, the paper's worst case.
Writes `<run>/test_grid.png` (rows: cars; columns: input, mild, moderate, severe) and `summary.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from corrode.train_gan import PRESETS

_LAMBDA3 = {"attention": True, "identity_weight": 0.5, "identity_mappings": "to-clean", "cycle_weight": 3.0}
STUDY: dict[str, dict[str, object]] = {
    "paper": {},
    "paper_identity": {"identity_weight": 0.5},
    "attention": {"attention": True},
    "attention_identity": {"attention": True, "identity_weight": 0.5},
    "attention_identity_to_clean": {
        "attention": True,
        "identity_weight": 0.5,
        "identity_mappings": "to-clean",
    },
    "attention_to_clean_lambda1": {**_LAMBDA3, "cycle_weight": 1.0},
    "attention_to_clean_lambda3": _LAMBDA3,
    "attention_to_clean_lambda5": {**_LAMBDA3, "cycle_weight": 5.0},
    "attention_to_clean_lambda3_resize": {**_LAMBDA3, "upsample": "resize"},
    "attention_to_clean_lambda3_diffaugment": {**_LAMBDA3, "diffaugment": "translation,cutout"},
    "attention_to_clean_lambda3_patch": {**_LAMBDA3, "discriminator": "patch"},
    "attention_to_clean_lambda3_patch_noise": {**_LAMBDA3, "discriminator": "patch", "cycle_noise": 0.1},
    "recommended": PRESETS["recommended"],
    "shared_diffaugment": {"generator": "shared", "diffaugment": "color,translation,cutout"},
    "shared_attention_identity_diffaugment": {
        "generator": "shared",
        "attention": True,
        "identity_weight": 0.5,
        "diffaugment": "color,translation,cutout",
    },
}
TEST_COLOURS = ("bright blue", "red", "white", "yellow", "black", "teal", "dark green", "silver")
TEST_VIEWS = ("side", "front-quarter", "rear-quarter", "crop-centre")
SIZE = 64


def make_data(out: Path) -> Path:
    from corrode.synth import SynthConfig, synth

    if not (out / "levels").is_dir():
        synth(SynthConfig(out=out, size=SIZE, carvana_cars=1, carvana_views=1, seed=1))
    return out / "levels"


def test_cars() -> tuple[torch.Tensor, np.ndarray]:
    """Eight held-out clean cars, masked on black: `(8, 3, 64, 64)` float [0, 1] and their masks."""
    from corrode.synth import draw_scene

    rng = np.random.default_rng(7)
    images, masks = [], []
    for i, colour in enumerate(TEST_COLOURS):
        scene = draw_scene(rng, SIZE, "none", colour=colour, view=TEST_VIEWS[i % len(TEST_VIEWS)])
        images.append(torch.from_numpy(scene.image * scene.mask[..., None]).permute(2, 0, 1).float() / 255)
        masks.append(scene.mask)
    return torch.stack(images), np.stack(masks)


def train(name: str, options: dict, data: Path, out: Path, budget: float) -> None:
    from corrode.train_gan import TrainGanConfig, load_run_config, train_gan
    from corrode.training import Interrupted

    run = out / name
    spent_file = run / "cpu_seconds.txt"
    spent = float(spent_file.read_text()) if spent_file.exists() else 0.0
    if spent >= budget:
        return
    resume = run if (run / "state.pt").exists() else None
    if resume is not None:
        config = load_run_config(run)
    else:
        config = TrainGanConfig(
            data=data,
            out=run,
            image_size=SIZE,
            base_channels=16,
            residual_blocks=4,
            discriminator_channels=32,
            epochs=50,
            decay_epochs=0,
            device="cpu",
            samples=6,
            checkpoint_every=100,
            **options,
        )
    started_wall, started_cpu = time.perf_counter(), time.process_time()

    def progress(step: int, total: int, losses: dict[str, float]) -> None:
        used = spent + time.process_time() - started_cpu
        if step % 100 == 0:
            print(
                f"  {name}: step {step}, {used:.0f} CPU s, "
                f"G {losses['gen_total']:.2f} D {losses['disc_total']:.2f}"
            )
        if used >= budget:
            raise KeyboardInterrupt  # train_gan stops after this step with a checkpoint

    with contextlib.suppress(Interrupted):  # the budget's stop, after a checkpoint
        train_gan(config, progress, resume=resume)
    used = spent + time.process_time() - started_cpu
    run.mkdir(parents=True, exist_ok=True)
    spent_file.write_text(f"{used:.1f}")
    print(f"  {name}: {used:.0f} CPU s in total, this call {time.perf_counter() - started_wall:.0f} s wall")


def evaluate(run: Path, images: torch.Tensor, masks: np.ndarray) -> dict[str, dict[str, float]]:
    from skimage.color import rgb2lab

    from corrode.grids import write_contact_sheet
    from corrode.runs import MetricsLog
    from corrode.translate import Translator

    def to_uint8(image: torch.Tensor) -> np.ndarray:
        return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    translator = Translator.load(run, device="cpu")
    lab_in = np.stack([rgb2lab(image.permute(1, 2, 0).numpy()) for image in images])
    rows = [[to_uint8(image)] for image in images]
    result: dict[str, dict[str, float]] = {}
    for level in translator.levels:
        out = translator.to_level(images, level)
        lab_out = np.stack([rgb2lab(image.permute(1, 2, 0).numpy()) for image in out])
        delta = np.linalg.norm(lab_out - lab_in, axis=-1)
        medians = [float(np.median(delta[k][masks[k]])) for k in range(len(images))]
        changed = [float((delta[k][masks[k]] > 20).mean()) for k in range(len(images))]
        result[level] = {
            "paint_dE": round(float(np.mean(medians)), 1),
            "changed": round(float(np.mean(changed)), 3),
            "blue_dE": round(medians[0], 1),
        }
        for row, image in zip(rows, out, strict=True):
            row.append(to_uint8(image))
    write_contact_sheet(run / "test_grid.png", rows, column_labels=["input", *translator.levels], cell=112)
    log = MetricsLog(run / "metrics.csv").rows()
    result["run"] = {
        "steps": int(log[-1]["step"]) if log else 0,
        "cpu_seconds": float((run / "cpu_seconds.txt").read_text()),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu-seconds", type=float, default=220.0, help="training budget per configuration")
    parser.add_argument("--only", default=",".join(STUDY), help="comma-separated configurations")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.only.split(",") if n]
    data = make_data(args.out / "synth")
    if not args.evaluate_only:
        for name in names:
            train(name, STUDY[name], data, args.out, args.cpu_seconds)
    images, masks = test_cars()
    summary = {name: evaluate(args.out / name, images, masks) for name in names if (args.out / name).is_dir()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{'configuration':40s} {'steps':>6s}  "
        + "  ".join(f"{lv:>26s}" for lv in ("mild", "moderate", "severe"))
    )
    for name, result in summary.items():
        cells = [
            f"dE {r['paint_dE']:5.1f} chg {r['changed']:.2f} blue {r['blue_dE']:5.1f}"
            for lv, r in result.items()
            if lv != "run"
        ]
        print(f"{name:40s} {result['run']['steps']:6d}  " + "  ".join(cells))
    print(f"grids: {args.out}/<configuration>/test_grid.png")


if __name__ == "__main__":
    main()
