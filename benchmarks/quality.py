"""The GAN study: how good are the translations of each train-gan configuration, for the same training time?

On `corrode synth` data at 64 px (the paper's imbalance 300 / 65 / 97 / 73), each configuration of
STUDY trains for the same budget of training time (`--clock wall`: seconds on the clock; `--clock cpu`:
CPU seconds of this process, fair on a shared machine; evaluation time is never counted) and is
evaluated every `--eval-every` seconds on held-out cars drawn apart from the training set:

- level accuracy: a judge classifier, trained on the real (synthetic) level images only, names the
  level of each generated car;
- colour shift: mean CIEDE2000 between each clean car and its translation over car pixels that are
  not rust (`corrode.metrics.colour_shift`): the paint the generator should keep;
- rust coverage per level (`corrode.metrics.rust_coverage`, rust added by the generator) against the
  level's true band, and rust coherence (`corrode.metrics.rust_coherence`: patches near 1, speckle
  near 0; the real rusty cars' figure is printed beside it);
- pixels changed outside the car when the translation is composited into the photo as `render`
  does it, and the share of background pixels the raw generator output moves (what compositing hides);
- FID and KID in the judge's feature space between generated and held-out real cars of each level,
  with their sample counts.

It prints one line per evaluation and one table row per configuration, the time each first reaches
the goal (accuracy >= 0.9, colour shift <= 5) and the time-to-quality ratio paper / recommended, and
writes WORK/<configuration>/grid.png (held-out cars: input, mild, moderate, severe), result.json,
curves.png and results.json. A configuration whose result.json holds the same budget is not trained
again, so configurations can be run in separate processes and tabulated together.

    python benchmarks/quality.py --clock wall --budget 900 --threads 2                  # the full study
    python benchmarks/quality.py --clock cpu --budget 300 --eval-every 100 --threads 1 \\
        --configs paper,recommended,recommended_tv                                       # a screening
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_ACCURACY = 0.9
TARGET_SHIFT = 5.0
# From this share of the budget on (minute 3 of 15) the colour shift must stay under TARGET_SHIFT.
SHIFT_FROM = 0.2

# name -> (preset, overrides of it, share of the budget at whose end the learning rate has decayed
# linearly to zero; 0: flat). The decay is what `--decay-epochs` does in a run of known length.
STUDY: dict[str, tuple[str, dict[str, Any], float]] = {
    "paper": ("paper", {}, 0.0),
    "recommended": ("recommended", {}, 0.0),
    # The preset before this one: the critic learns from the step's batch only, car-averaged.
    "recommended_previous": ("recommended", {"critic_pooling": "car", "critic_batch": 0}, 0.0),
    # The previous preset: rust of any colour, no opacity or level term (off-colour speckle, haze).
    "recommended_free": (
        "recommended",
        {"rust_layer": "free", "attention_binary": 0.0, "level_weight": 0.0},
        0.0,
    ),
    # The preset before that: also transposed-convolution upsampling (checkered rust).
    "recommended_transposed": (
        "recommended",
        {"upsample": "transposed", "rust_layer": "free", "attention_binary": 0.0, "level_weight": 0.0},
        0.0,
    ),
    "recommended_tv": ("recommended", {"attention_tv": 1.0}, 0.0),
    "recommended_sparse": ("recommended", {"attention_sparsity": 0.3}, 0.0),
    "recommended_tv_sparse": ("recommended", {"attention_tv": 1.0, "attention_sparsity": 0.3}, 0.0),
    "recommended_r1": ("recommended", {"r1_weight": 1.0}, 0.0),
    "recommended_spectral": ("recommended", {"discriminator_norm": "spectral"}, 0.0),
    "recommended_multiscale": ("recommended", {"discriminator": "multiscale"}, 0.0),
    "recommended_paper_discriminator": ("recommended", {"discriminator": "paper"}, 0.0),
    "recommended_late_decay": ("recommended", {}, 0.3),
    "recommended_nce": ("recommended", {"nce_weight": 1.0}, 0.0),
    "recommended_level": ("recommended", {"level_weight": 1.0}, 0.0),
    "recommended_ema995": ("recommended", {"ema": 0.995}, 0.0),
    "recommended_palette": ("recommended", {"rust_layer": "palette"}, 0.0),
    "recommended_palette_level": ("recommended", {"rust_layer": "palette", "level_weight": 1.0}, 0.0),
    "recommended_palette_binary": ("recommended", {"rust_layer": "palette", "attention_binary": 1.0}, 0.0),
    "recommended_level3": ("recommended", {"level_weight": 3.0}, 0.0),
    "recommended_diffaugment": ("recommended", {"diffaugment": "color,translation"}, 0.0),
    "recommended_critic_max": ("recommended", {"critic_pooling": "car_max"}, 0.0),
    "recommended_translation": ("recommended", {"diffaugment": "translation"}, 0.0),
    "recommended_critic_batch": ("recommended", {"critic_pooling": "car_max", "critic_batch": 3}, 0.0),
    "recommended_critic_trained": (
        "recommended",
        {"critic_pooling": "car_max", "critic_batch": 3, "critic_lr_factor": 10.0},
        0.0,
    ),
    # Against mild's late start: more cars per step, a faster learning rate, no identity passes (0.84x step).
    "recommended_batch2": ("recommended", {"batch_size": 2}, 0.0),
    "recommended_lr4": ("recommended", {"learning_rate": 4e-4}, 0.0),
    "recommended_no_identity": ("recommended", {"identity_weight": 0.0}, 0.0),
    # The level critic trained alone for 1,500 steps first (about 45 CPU-s, inside the budget).
    "recommended_critic_warmup": ("recommended", {"critic_warmup": 1500}, 0.0),
    # ... and its real images shifted by up to 1/8 (held-out real mild 0.60-0.65 alone, against 0.21-0.60).
    "recommended_critic_shift": (
        "recommended",
        {"critic_warmup": 1500, "critic_augment": "translation"},
        0.0,
    ),
    "recommended_palette_level_binary": (
        "recommended",
        {"rust_layer": "palette", "level_weight": 1.0, "attention_binary": 1.0},
        0.0,
    ),
}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/quality-study"), help="work folder")
    parser.add_argument("--data", type=Path, default=None, help="a synth folder (default: WORK/synth)")
    parser.add_argument("--classifier", default=None, help="judge classifier run (default: train one)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--budget", type=float, default=900.0, help="training seconds per configuration")
    parser.add_argument("--eval-every", type=float, default=60.0, help="training seconds between evaluations")
    parser.add_argument(
        "--configs", default="paper,recommended", help=f"comma-separated, of: {', '.join(STUDY)}"
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--residual-blocks", type=int, default=4)
    parser.add_argument("--discriminator-channels", type=int, default=32)
    parser.add_argument("--eval-images", type=int, default=48, help="held-out clean cars translated")
    parser.add_argument("--real-images", type=int, default=48, help="held-out real cars per level (FID)")
    parser.add_argument("--grid-cars", type=int, default=8)
    parser.add_argument(
        "--held-out", type=Path, default=None, help="held-out cars (npz; default WORK/held_out_<size>px.npz)"
    )
    parser.add_argument("--classifier-epochs", type=int, default=18)
    parser.add_argument("--classifier-width", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="train again even where result.json exists")
    parser.add_argument(
        "--report",
        action="store_true",
        help="train nothing: tabulate the configurations' result.json files, whatever their budget",
    )
    parser.add_argument(
        "--at", type=float, default=None, help="with --report: only the evaluations up to this training time"
    )
    return parser.parse_args()


def clock(kind: str) -> float:
    return time.process_time() if kind == "cpu" else time.perf_counter()


# ------------------------------------------------------------------------------------------- data


# The paper's imbalance: what the GAN trains on. The judge gets 300 of every level.
STUDY_COUNTS = {"none": 300, "mild": 65, "moderate": 97, "severe": 73}


def draw_data(out: Path, size: int, seed: int, counts: dict[str, int] = STUDY_COUNTS) -> Path:
    """A `corrode synth` set in `out` (drawn once: kept if its manifest is there)."""
    from corrode.synth import SynthConfig, synth

    if not (out / "manifest.csv").is_file():
        synth(SynthConfig(out=out, carvana_cars=0, size=size, seed=seed, **counts))
    return out


@dataclasses.dataclass
class HeldOut:
    """Cars drawn apart from the training set: clean ones to translate and real ones of each level."""

    photos: np.ndarray  # (N, S, S, 3) uint8, background kept
    masks: np.ndarray  # (N, S, S) bool
    clean: Any  # (N, 3, S, S) float [0, 1] tensor, masked on black
    real: dict[str, Any]  # level -> (M, 3, S, S) float [0, 1] tensor, masked
    real_masks: dict[str, np.ndarray]


def held_out_cars(path: Path, size: int, count: int, real_count: int, seed: int) -> HeldOut:
    """Drawn once and kept in `path` (npz), so every configuration of a study meets the same cars
    even if the synth code changes between its runs."""
    import torch

    from corrode import levels

    def masked(photos: np.ndarray, masks: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(photos * masks[..., None]).permute(0, 3, 1, 2).float() / 255

    if not path.is_file():
        from corrode.images import atomic_write_bytes
        from corrode.synth.scene import draw_scene

        # Far from synth's own seeds, so none of these cars is in the training set.
        rng = np.random.default_rng(1_000_003 + seed)
        drawn: dict[str, np.ndarray] = {}
        for level, n in [("none", count)] + [(level, real_count) for level in levels.RUSTY_NAMES]:
            scenes = [draw_scene(rng, size, level) for _ in range(n)]
            drawn[f"photos_{level}"] = np.stack([s.image for s in scenes])
            drawn[f"masks_{level}"] = np.stack([s.mask for s in scenes])
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **drawn)
        atomic_write_bytes(path, buffer.getvalue())
    with np.load(path) as stored:
        drawn = {key: stored[key] for key in stored.files}
    real = {lv: masked(drawn[f"photos_{lv}"], drawn[f"masks_{lv}"]) for lv in levels.RUSTY_NAMES}
    real_masks = {lv: drawn[f"masks_{lv}"] for lv in levels.RUSTY_NAMES}
    photos, masks = drawn["photos_none"], drawn["masks_none"]
    return HeldOut(photos, masks, masked(photos, masks), real, real_masks)


def judge(work: Path, args: argparse.Namespace) -> Path:
    """A classifier trained with train-classifier's defaults on its own synth set (300 cars per level,
    drawn apart from the study's training set's counts), never on generated images."""
    from corrode import runs
    from corrode.train_classifier import TrainClassifierConfig, train_classifier

    run = work / "judge"
    if not (run / runs.BEST_WEIGHTS).is_file():
        data = draw_data(work / "judge-data", args.size, args.seed, dict.fromkeys(STUDY_COUNTS, 300))
        config = TrainClassifierConfig(
            data=data,
            out=run,
            size=args.size,
            width=args.classifier_width,
            epochs=args.classifier_epochs,
            device=args.device,
            seed=args.seed,
        )
        train_classifier(config, log=lambda line: print(f"  judge: {line}"))
    return run


# ------------------------------------------------------------------------------------- measuring


def _hwc(images: Any) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy().astype(np.float64)


class Measure:
    """Everything measured on the held-out cars; the real cars' features are embedded once."""

    def __init__(self, held: HeldOut, classifier: Any) -> None:
        from corrode import levels, metrics

        self.held, self.classifier = held, classifier
        self.real_features = {level: classifier.features(images) for level, images in held.real.items()}
        self.real_accuracy = {
            level: float((classifier.predict(images).argmax(1) == levels.get(level).index).float().mean())
            for level, images in held.real.items()
        }
        self.real_coherence = {
            level: float(
                np.nanmean(
                    [
                        metrics.rust_coherence(metrics.rust_pixels(image) & mask)
                        for image, mask in zip(_hwc(images), held.real_masks[level], strict=True)
                    ]
                )
            )
            for level, images in held.real.items()
        }

    def __call__(self, translator: Any) -> dict[str, Any]:
        import torch

        from corrode import levels, metrics
        from corrode.synth.rust import RUST_BANDS

        held = self.held
        source = _hwc(held.clean)
        car = torch.from_numpy(held.masks)[:, None].float()
        result: dict[str, Any] = {"levels": {}}
        for level in translator.levels:
            raw = translator.to_level(held.clean, level)
            fake = raw * car  # the generator never sees the background; render keeps the photo's
            made = _hwc(fake)
            index = levels.get(level).index
            accuracy = float((self.classifier.predict(fake).argmax(1) == index).float().mean())
            # Rust the generator added (what metrics.rust_coverage counts), found once per car.
            rust = [metrics.rust_pixels(m, s) & k for s, m, k in zip(source, made, held.masks, strict=True)]
            coverage = [r.sum() / max(1, k.sum()) for r, k in zip(rust, held.masks, strict=True)]
            coherence = [metrics.rust_coherence(r) for r in rust]
            fake_features = self.classifier.features(fake)
            kid, kid_std = metrics.kernel_distance_of_features(self.real_features[level], fake_features)
            low, high = RUST_BANDS[level]
            result["levels"][level] = {
                "accuracy": accuracy,
                "colour_shift": metrics.colour_shift(
                    np.concatenate(source), np.concatenate(made), np.concatenate(held.masks)
                ),
                "coverage": float(np.nanmean(coverage)),
                "band": [low, high],
                "in_band": bool(low <= float(np.nanmean(coverage)) <= high),
                "coherence": float(np.nanmean(coherence)) if not np.all(np.isnan(coherence)) else None,
                "fid": metrics.frechet_distance_of_features(self.real_features[level], fake_features),
                "kid": kid,
                "kid_std": kid_std,
                "fid_samples": [len(fake_features), len(self.real_features[level])],
                "changed_outside_car": self._outside(made, source),
                "spill": self._spill(raw),
            }
        values = result["levels"].values()
        result["accuracy"] = float(np.mean([v["accuracy"] for v in values]))
        result["colour_shift"] = float(np.mean([v["colour_shift"] for v in values]))
        return result

    def _outside(self, made: np.ndarray, source: np.ndarray) -> int:
        """Pixels outside the car that differ once each translation is composited into its photo."""
        from corrode import metrics
        from corrode.compositing import Square, composite

        held, changed = self.held, 0
        for photo, mask, generated, seen in zip(held.photos, held.masks, made, source, strict=True):
            square = Square(0, 0, photo.shape[0])
            result = composite(
                photo, mask, square, seen.astype(np.float32), generated.astype(np.float32), feather=2.0
            )
            changed += metrics.changed_pixels(photo, result, ~mask)
        return changed

    def _spill(self, raw: Any) -> float:
        """Share of background pixels where the raw (unmasked) output moves from black by > 0.1."""
        background = ~self.held.masks
        moved = raw.amax(1).numpy() > 0.1
        return float((moved & background).sum() / max(1, background.sum()))


def write_grid(path: Path, translator: Any, held: HeldOut, cars: int) -> Path:
    import torch

    from corrode.grids import write_contact_sheet

    def uint8(images: torch.Tensor) -> list[np.ndarray]:
        return [(image * 255).round().astype(np.uint8) for image in images.permute(0, 2, 3, 1).numpy()]

    clean = held.clean[:cars]
    car = torch.from_numpy(held.masks[:cars])[:, None].float()
    columns = [uint8(clean)] + [uint8(translator.to_level(clean, level) * car) for level in translator.levels]
    rows = [list(row) for row in zip(*columns, strict=True)]
    return write_contact_sheet(path, rows, column_labels=["input", *translator.levels], cell=112)


# -------------------------------------------------------------------------------------- training


def gan_config(name: str, data: Path, args: argparse.Namespace) -> Any:
    from corrode.train_gan import TrainGanConfig, with_preset

    preset, overrides, _ = STUDY[name]
    base = TrainGanConfig(
        data=data / "levels",
        out=args.work / name,
        image_size=args.size,
        base_channels=args.base_channels,
        residual_blocks=args.residual_blocks,
        discriminator_channels=args.discriminator_channels,
        # A long nominal run: the learning rate stays flat within the budget (unless the study decays it).
        epochs=1000,
        decay_epochs=0,
        samples=0,
        checkpoint_every=0,
        device=args.device,
        seed=args.seed,
    )
    return dataclasses.replace(with_preset(base, preset), **overrides)


def run_one(name: str, data: Path, measure: Measure, args: argparse.Namespace) -> dict[str, Any]:
    from corrode import distributed
    from corrode.checkpoint import save_model
    from corrode.train_gan import GanTrainer, gan_model_metadata, load_levels
    from corrode.translate import Translator

    config = gan_config(name, data, args)
    decay = STUDY[name][2]
    context = distributed.setup(config.device)
    images, _ = load_levels(Path(config.data), config.image_size, config.masks)
    trainer = GanTrainer(config, images, context)
    budget, points, trained, next_eval = args.budget, [], 0.0, args.eval_every
    if decay > 0:
        # Flat, then linear to zero over the last `decay` of the budget, by the study's clock.
        def learning_rate(step: int) -> float:
            start = budget * (1 - decay)
            return config.learning_rate * min(1.0, max(0.0, (budget - trained) / max(budget - start, 1e-9)))

        trainer.learning_rate = learning_rate  # type: ignore[method-assign]

    def translator() -> Translator:
        return Translator(
            generators=trainer.exported.eval(),
            image_size=args.size,
            clean=trainer.clean,
            levels=tuple(trainer.rusty),
            device=trainer.device,
            dtype=trainer.dtype,
            source=Path("<in memory>"),
        )

    while True:
        if trained >= next_eval:
            started = time.perf_counter()
            point = measure(translator())
            trainer.exported.train()
            point.update({"train_seconds": trained, "step": trainer.step})
            points.append(point)
            level_text = "  ".join(
                f"{lv} acc {v['accuracy']:.2f} cov {v['coverage']:.2f} coh {v['coherence'] or 0:.2f}"
                for lv, v in point["levels"].items()
            )
            print(
                f"{name:24s} {trained:6.0f} s step {trainer.step:5d}  accuracy {point['accuracy']:.3f}  "
                f"shift {point['colour_shift']:5.2f}  {level_text}  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            next_eval += args.eval_every
        if trained >= budget:
            break
        started = clock(args.clock)
        trainer.train_step()
        trained += clock(args.clock) - started
    out = args.work / name
    save_model(out / "model.safetensors", trainer.exported, kind="gan", config=gan_model_metadata(trainer))
    write_grid(out / "grid.png", translator(), measure.held, args.grid_cars)
    result = {
        "config": name,
        "clock": args.clock,
        "budget": budget,
        "threads": args.threads,
        "changes": {**STUDY[name][1], **({"lr_decay_share": decay} if decay else {})},
        "preset": STUDY[name][0],
        "points": points,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


# ----------------------------------------------------------------------------------------- report


def goal_time(points: list[dict[str, Any]]) -> float | None:
    for point in points:
        if point["accuracy"] >= TARGET_ACCURACY and point["colour_shift"] <= TARGET_SHIFT:
            return point["train_seconds"]
    return None


def ratio(paper: float | None, better: float | None, budget: float) -> str:
    if better is None:
        return "n/a (recommended never reached the goal)"
    if paper is None:
        return f"> {budget / max(better, 1e-9):.1f}x (paper never reached it within the budget)"
    return f"{paper / max(better, 1e-9):.2f}x"


def summary_row(result: dict[str, Any]) -> str:
    points, budget = result["points"], result["budget"]
    last = points[-1]
    late = [p["colour_shift"] for p in points if p["train_seconds"] >= SHIFT_FROM * budget]
    levels = list(last["levels"])

    def per_level(key: str, digits: int = 2) -> str:
        return " / ".join(
            "-" if last["levels"][lv][key] is None else f"{last['levels'][lv][key]:.{digits}f}"
            for lv in levels
        )

    coverage = " / ".join(
        f"{last['levels'][lv]['coverage']:.2f}{'' if last['levels'][lv]['in_band'] else '!'}" for lv in levels
    )
    samples = last["levels"][levels[0]]["fid_samples"]
    outside = sum(last["levels"][lv]["changed_outside_car"] for lv in levels)
    spill = max(last["levels"][lv]["spill"] for lv in levels)
    reached = goal_time(points)
    shifts = " ".join(f"{p['colour_shift']:.1f}" for p in points)
    return (
        f"| {result['config']} | {budget:.0f} s | {last['step']} "
        f"| {last['accuracy']:.2f} ({per_level('accuracy')}) "
        f"| {shifts} | {max(late):.1f} "
        f"| {coverage} | {per_level('coherence')} | {outside} ({spill:.3f}) "
        f"| {per_level('fid', 1)} | {per_level('kid', 3)} ({samples[0]} vs {samples[1]}) "
        f"| {'-' if reached is None else f'{reached:.0f}'} |"
    )


def write_curves(results: dict[str, dict[str, Any]], out: Path) -> Path:
    from corrode.plots import plot_panels

    def series(key: str) -> dict[str, tuple[list[float], list[float]]]:
        return {
            name: ([p["train_seconds"] for p in r["points"]], [p[key] for p in r["points"]])
            for name, r in results.items()
        }

    panels = {
        "level accuracy (judge)": series("accuracy"),
        "colour shift, mean dE00 off rust": series("colour_shift"),
    }
    clock_name = next(iter(results.values()))["clock"]
    return plot_panels(panels, out, xlabel=f"training seconds ({clock_name})", columns=2, title="GAN study")


def main() -> None:
    args = parse_arguments()
    import torch

    torch.set_num_threads(args.threads)
    from corrode.classification import Classifier

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in STUDY]
    if unknown:
        raise SystemExit(
            f"unknown configuration(s) {', '.join(unknown)}: expected some of {', '.join(STUDY)}"
        )
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    if args.report:
        # Train and measure nothing: each configuration's saved result says how it was run.
        for name in names:
            saved = args.work / name / "result.json"
            if saved.is_file():
                result = json.loads(saved.read_text())
                if args.at is not None:
                    result["points"] = [p for p in result["points"] if p["train_seconds"] <= args.at + 1e-6]
                    result["budget"] = min(result["budget"], args.at)
                if result["points"]:
                    results[name] = result
        judge_on_real = next((r["judge_on_real"] for r in results.values() if "judge_on_real" in r), None)
    else:
        print(
            f"device {args.device}, torch threads {torch.get_num_threads()}, "
            f"{args.clock} clock, budget {args.budget} s"
        )
        data = args.data or draw_data(args.work / "synth", args.size, args.seed)
        judge_run = Path(args.classifier) if args.classifier else judge(args.work, args)
        classifier = Classifier.load(judge_run, device=args.device)
        held_path = args.held_out or args.work / f"held_out_{args.size}px.npz"
        held = held_out_cars(held_path, args.size, args.eval_images, args.real_images, args.seed)
        measure = Measure(held, classifier)
        judge_on_real = measure.real_accuracy
        print(
            "judge on held-out real cars: "
            + ", ".join(f"{lv} {acc:.2f}" for lv, acc in measure.real_accuracy.items())
            + "; real rust coherence: "
            + ", ".join(f"{lv} {c:.2f}" for lv, c in measure.real_coherence.items())
        )
        for name in names:
            saved = args.work / name / "result.json"
            if saved.is_file() and not args.fresh:
                result = json.loads(saved.read_text())
                if (result["clock"], result["budget"]) == (args.clock, args.budget):
                    results[name] = result
                    continue
            results[name] = run_one(name, data, measure, args)
            results[name].update(judge=str(judge_run), judge_on_real=judge_on_real)
            (args.work / name / "result.json").write_text(json.dumps(results[name], indent=1) + "\n")

    if not results:
        print(f"no results in {args.work} for {', '.join(names)}")
        return
    print()
    for result in results.values():
        judge_text = result.get("judge", "(not recorded)")
        print(
            f"{result['config']}: {result['clock']} clock, {result['budget']:.0f} s, "
            f"{result.get('threads', '?')} thread(s), judge {judge_text}"
        )
    if judge_on_real is not None:
        print("judge on held-out real cars: " + ", ".join(f"{lv} {a:.2f}" for lv, a in judge_on_real.items()))
    print(
        "| configuration | budget | steps | accuracy (mild / moderate / severe) "
        "| colour shift at each evaluation "
        f"| max shift from {SHIFT_FROM:.0%} of the budget | coverage (! = outside its band "
        "0.02-0.08 / 0.12-0.25 / 0.40-0.70) | rust coherence | pixels changed outside the car (raw spill) "
        f"| FID | KID (generated vs real cars) | t(accuracy >= {TARGET_ACCURACY}, shift <= {TARGET_SHIFT}) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results.values():
        print(summary_row(result))
    if "paper" in results and "recommended" in results:
        print(
            f"time-to-quality ratio (paper / recommended), accuracy >= {TARGET_ACCURACY} and colour shift <= "
            f"{TARGET_SHIFT}: "
            + ratio(
                goal_time(results["paper"]["points"]),
                goal_time(results["recommended"]["points"]),
                min(results["paper"]["budget"], results["recommended"]["budget"]),
            )
        )
    figure = write_curves(results, args.work / "curves.png")
    summary = {
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "judge_on_real": judge_on_real,
        "results": results,
    }
    (args.work / "results.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(
        f"curves: {figure}; grids: {args.work}/<configuration>/grid.png; "
        f"all points: {args.work / 'results.json'}"
    )


if __name__ == "__main__":
    main()
