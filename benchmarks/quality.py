"""Quality against training time: the paper's GAN configuration vs the improved one, same wall-clock budget.

On `corrode synth` data at 64 px, each configuration trains for the same number of training seconds
(evaluation time is not counted) and is evaluated every `--eval-every` training seconds with
`corrode.evaluate`: level accuracy of the generated cars judged by a classifier trained on the real
(synthetic) level images, FID in that classifier's feature space, and colour shift (mean CIEDE2000
over car pixels that are not rust). It prints one row per checkpoint, the time each configuration
first reaches level accuracy >= 0.9 (and the issue's goal: accuracy >= 0.9 with colour shift <= 5),
their ratio, and writes curves.png and results.json into the work folder.

    python benchmarks/quality.py --budget-minutes 15                 # the full study
    python benchmarks/quality.py --budget-minutes 2 --eval-every 30  # a quick look

Timings depend on the machine and on what else runs on it; the script prints the device and threads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

TARGET_ACCURACY = 0.9
TARGET_SHIFT = 5.0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/quality-benchmark"), help="work folder")
    parser.add_argument(
        "--data", type=Path, default=None, help="a synth folder (default: draw one in WORK/synth)"
    )
    parser.add_argument("--classifier", default=None, help="classifier run (default: train one in WORK)")
    parser.add_argument("--budget-minutes", type=float, default=15.0, help="training time per configuration")
    parser.add_argument("--eval-every", type=float, default=60.0, help="training seconds between evaluations")
    parser.add_argument("--size", type=int, default=64)
    # The widths of benchmarks/train_gan_quality.py, where the recommended preset was found.
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--residual-blocks", type=int, default=4)
    parser.add_argument("--discriminator-channels", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1, help="the paper's is 1")
    parser.add_argument("--configs", default="paper,improved", help="comma-separated: paper, improved")
    parser.add_argument("--eval-images", type=int, default=32, help="clean cars translated per evaluation")
    parser.add_argument("--real-images", type=int, default=64, help="real cars per level for FID")
    parser.add_argument("--classifier-epochs", type=int, default=60)
    parser.add_argument("--classifier-width", type=float, default=0.5)
    parser.add_argument(
        "--synth-none", type=int, default=300, help="clean cars drawn (the others scale with it)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def draw_data(work: Path, size: int, none: int, seed: int) -> Path:
    from corrode.synth import SynthConfig, synth

    out = work / "synth"
    if (out / "manifest.csv").is_file():
        return out
    scale = none / 300
    config = SynthConfig(
        out=out,
        none=none,
        mild=max(4, round(65 * scale)),
        moderate=max(4, round(97 * scale)),
        severe=max(4, round(73 * scale)),
        carvana_cars=0,
        size=size,
        seed=seed,
    )
    started = time.perf_counter()
    synth(config)
    print(f"synth: drew {none} clean + rusty cars at {size} px in {time.perf_counter() - started:.0f} s")
    return out


def judge(work: Path, data: Path, args: argparse.Namespace) -> Path:
    """A classifier trained on the real (synthetic) level images only, never on generated ones."""
    from corrode import runs
    from corrode.train_classifier import TrainClassifierConfig, train_classifier

    run = work / "classifier"
    if (run / runs.BEST_WEIGHTS).is_file():
        return run
    config = TrainClassifierConfig(
        data=data,
        out=run,
        size=args.size,
        width=args.classifier_width,
        epochs=args.classifier_epochs,
        batch_size=32,
        learning_rate=2e-3,
        device=args.device,
        seed=args.seed,
    )
    started = time.perf_counter()
    train_classifier(config, log=lambda line: print(f"  classifier: {line}"))
    print(f"classifier trained in {time.perf_counter() - started:.0f} s")
    return run


def gan_configs(args: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
    from corrode.train_gan import TrainGanConfig, with_preset

    base = TrainGanConfig(
        data=data / "levels",
        out=work / "unused",
        image_size=args.size,
        batch_size=args.batch_size,
        base_channels=args.base_channels,
        residual_blocks=args.residual_blocks,
        discriminator_channels=args.discriminator_channels,
        # A long nominal run: the learning rate stays flat within the budget for both configurations.
        epochs=1000,
        decay_epochs=500,
        samples=0,
        checkpoint_every=0,
        device=args.device,
        seed=args.seed,
    )
    presets = {"paper": "paper", "improved": "recommended"}
    chosen = [name.strip() for name in args.configs.split(",") if name.strip()]
    return {name: with_preset(base, presets[name]) for name in chosen}


def evaluate_now(
    trainer: Any, data: Path, classifier: Any, args: argparse.Namespace, cache: dict[Any, Any]
) -> dict[str, Any]:
    from corrode.evaluate import EvaluateConfig, evaluate
    from corrode.translate import Translator

    translator = Translator(
        generators=trainer.exported,
        image_size=args.size,
        clean=trainer.clean,
        levels=tuple(trainer.rusty),
        device=trainer.device,
        dtype=trainer.dtype,
        source=Path("<in memory>"),
    )
    trainer.exported.eval()
    try:
        cfg = EvaluateConfig(
            data=data,
            limit=args.eval_images,
            real_limit=args.real_images,
            render_checks=0,
            batch_size=32,
            device=args.device,
        )
        report = evaluate(cfg, translator=translator, classifier=classifier, cache=cache)
    finally:
        trainer.exported.train()
    per_level = report.levels
    names = list(per_level)

    def mean(key: str) -> float:
        values = [per_level[n].get(key) for n in names]
        values = [v for v in values if v is not None and not math.isnan(v)]
        return float(sum(values) / len(values)) if values else float("nan")

    return {
        "accuracy": mean("accuracy"),
        "fid": mean("fid"),
        "colour_shift": mean("colour_shift"),
        "per_level_accuracy": {n: per_level[n].get("accuracy") for n in names},
        "coverage": {n: (per_level[n].get("coverage") or {}).get("generated_mean") for n in names},
        "features": report.features,
    }


def run_one(
    name: str, config: Any, data: Path, classifier: Any, args: argparse.Namespace
) -> list[dict[str, Any]]:
    from corrode import distributed
    from corrode.checkpoint import save_model
    from corrode.train_gan import GanTrainer, gan_model_metadata, load_levels

    context = distributed.setup(config.device)
    images, _ = load_levels(Path(config.data), config.image_size, config.masks)
    trainer = GanTrainer(config, images, context)
    budget = args.budget_minutes * 60
    points: list[dict[str, Any]] = []
    cache: dict[Any, Any] = {}  # real cars and their features, embedded once
    trained = 0.0
    next_eval = 0.0
    while True:
        if trained >= next_eval:
            started = time.perf_counter()
            measured = evaluate_now(trainer, data, classifier, args, cache)
            measured.update({"config": name, "train_seconds": trained, "step": trainer.step})
            measured["eval_seconds"] = time.perf_counter() - started
            points.append(measured)
            print(
                f"{name:9s} {trained:7.0f} s  step {trainer.step:6d}  accuracy {measured['accuracy']:.3f}  "
                f"FID {measured['fid']:8.2f}  colour shift {measured['colour_shift']:6.2f}  "
                f"(evaluation {measured['eval_seconds']:.0f} s)",
                flush=True,
            )
            next_eval += args.eval_every
        if trained >= budget:
            break
        started = time.perf_counter()
        trainer.train_step()
        trained += time.perf_counter() - started
    # The generators as they ended, for a look with `corrode evaluate --gan WORK/<config>` or render.
    save_model(
        args.work / name / "model.safetensors",
        trainer.exported,
        kind="gan",
        config=gan_model_metadata(trainer),
    )
    return points


def first_time(points: list[dict[str, Any]], *, with_colour: bool) -> float | None:
    for point in points:
        if point["accuracy"] >= TARGET_ACCURACY and (
            not with_colour or point["colour_shift"] <= TARGET_SHIFT
        ):
            return point["train_seconds"]
    return None


def ratio(paper: float | None, improved: float | None, budget: float) -> str:
    if improved is None:
        return "n/a (improved never reached it)"
    if paper is None:
        return f"> {budget / max(improved, 1e-9):.1f}x (paper never reached it within the budget)"
    return f"{paper / max(improved, 1e-9):.2f}x"


def write_curves(results: dict[str, list[dict[str, Any]]], out: Path) -> Path:
    from corrode.plots import plot_panels

    def series(key: str) -> dict[str, tuple[list[float], list[float]]]:
        return {
            name: ([p["train_seconds"] for p in pts], [p[key] for p in pts]) for name, pts in results.items()
        }

    panels = {
        "level accuracy (classifier judge)": series("accuracy"),
        "FID (classifier features)": series("fid"),
        "colour shift, mean dE00 off rust": series("colour_shift"),
    }
    return plot_panels(
        panels, out, xlabel="training seconds", columns=3, title="paper vs improved GAN, same budget"
    )


def main() -> None:
    args = parse_arguments()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from corrode.classify import Classifier
    from corrode.device import choose_device

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    device = choose_device(args.device)
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, "
        f"budget {args.budget_minutes} min per configuration"
    )
    data = args.data or draw_data(work, args.size, args.synth_none, args.seed)
    classifier_run = args.classifier or judge(work, data, args)
    classifier = Classifier.load(classifier_run, device=args.device)
    configs = gan_configs(args, data, work)
    for name, config in configs.items():
        changed = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(config)
            if getattr(config, f.name) != getattr(configs.get("paper", config), f.name)
        }
        print(
            f"{name}: {changed or 'the paper setup'} "
            f"(base {args.base_channels} channels, {args.residual_blocks} blocks)"
        )
    results = {name: run_one(name, config, data, classifier, args) for name, config in configs.items()}

    budget = args.budget_minutes * 60
    print()
    print(
        "| config | best accuracy | final accuracy | final FID | final colour shift "
        f"| t(acc>={TARGET_ACCURACY}) "
        f"| t(acc>={TARGET_ACCURACY} & shift<={TARGET_SHIFT}) |"
    )
    print("|---|---|---|---|---|---|---|")
    times: dict[str, tuple[float | None, float | None]] = {}
    for name, points in results.items():
        last = points[-1]
        times[name] = (first_time(points, with_colour=False), first_time(points, with_colour=True))
        shown = [("-" if t is None else f"{t:.0f} s") for t in times[name]]
        print(
            f"| {name} | {max(p['accuracy'] for p in points):.3f} | {last['accuracy']:.3f} "
            f"| {last['fid']:.2f} "
            f"| {last['colour_shift']:.2f} | {shown[0]} | {shown[1]} |"
        )
    if "paper" in times and "improved" in times:
        print(
            f"time-to-quality ratio (paper / improved), accuracy >= {TARGET_ACCURACY}: "
            f"{ratio(times['paper'][0], times['improved'][0], budget)}"
        )
        print(
            f"time-to-goal ratio (paper / improved), accuracy >= {TARGET_ACCURACY} and colour shift <= "
            f"{TARGET_SHIFT}: {ratio(times['paper'][1], times['improved'][1], budget)}"
        )
    figure = write_curves(results, work / "curves.png")
    summary = {
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "device": str(device),
        "results": results,
    }
    (work / "results.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(f"curves: {figure}; all points: {work / 'results.json'}")


if __name__ == "__main__":
    main()
