"""How well `corrode train-classifier` learns the four levels, against a colour-histogram baseline.

    python benchmarks/classifier.py [--size 64] [--label-noise 0.0] [--work /tmp/corrode-classifier]

Draws a `corrode synth` training set (--none/--mild/--moderate/--severe images, seed 0) and a separate
held-out set (--held images per level, seed 1, never trained on), trains the classifier with the
config's defaults (plus --size, --width and --epochs when given) in this process, and prints for the
held-out set: accuracy, every level's recall, expected calibration error (15 bins) and the CPU seconds
training took (process time: other work on the machine does not count, but shares the caches).
Accuracy is measured against the true levels in the held-out set's manifest.csv, so with
--label-noise (which mislabels the training set only) the figure says how much the noise costs.

The baseline, in the same run and on the same masked images: multinomial logistic regression on each
car's colour histogram (8 x 8 x 8 RGB bins over the car's pixels). The ratio is the classifier's
held-out accuracy over the baseline's. A model that reads each car and its mirror image (`mirror`,
the default) is also scored reading one view, with both inference speeds (wall clock, the held-out
set in batches of 64).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/corrode-classifier"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--none", type=int, default=300)
    parser.add_argument("--mild", type=int, default=300)
    parser.add_argument("--moderate", type=int, default=300)
    parser.add_argument("--severe", type=int, default=300)
    parser.add_argument("--held", type=int, default=200, help="held-out images per level")
    parser.add_argument("--label-noise", type=float, default=0.0)
    parser.add_argument("--width", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other TrainClassifierConfig field (repeatable): --set augment=false --set epochs=30",
    )
    parser.add_argument("--name", default=None, help="run folder name under --work (default run-SIZE-NOISE)")
    return parser.parse_args()


def overrides_from(pairs: list[str]) -> dict[str, object]:
    """`FIELD=VALUE` strings -> TrainClassifierConfig values, typed as the field's default is."""
    import dataclasses

    from corrode.train_classifier import TrainClassifierConfig

    defaults = {field.name: field.default for field in dataclasses.fields(TrainClassifierConfig)}
    values: dict[str, object] = {}
    for pair in pairs:
        name, separator, text = (part.strip() for part in pair.partition("="))
        if not separator or name not in defaults:
            raise SystemExit(f"--set {pair!r}: expected FIELD=VALUE with a TrainClassifierConfig field")
        kind = type(defaults[name])
        if kind is bool:
            values[name] = text.lower() in ("1", "true", "yes", "on")
        elif kind is tuple:
            values[name] = tuple(int(part) for part in text.split(","))
        elif kind in (int, float, str):
            values[name] = kind(text)
        else:
            values[name] = Path(text)
    return values


def draw(out: Path, size: int, counts: dict[str, int], label_noise: float, seed: int) -> Path:
    from corrode.synth import SynthConfig, synth

    if not (out / "manifest.csv").is_file():
        synth(SynthConfig(out=out, size=size, carvana_cars=0, label_noise=label_noise, seed=seed, **counts))
    return out


def true_levels(data: Path, paths: list[Path]) -> np.ndarray:
    """Each image's true level index from the synth manifest (the folder holds the given label)."""
    from corrode import levels
    from corrode.synth import read_manifest

    truth = {
        (data / row["file"]).resolve(): levels.get(row["true_level"]).index
        for row in read_manifest(data / "manifest.csv")
    }
    return np.asarray([truth[Path(path).resolve()] for path in paths])


def histograms(images: np.ndarray, bins: int = 8) -> np.ndarray:
    """(N, bins^3) colour histogram of each `(3, S, S)` uint8 image's car (non-black) pixels, summing to 1."""
    rows = []
    for image in images:
        pixels = image.reshape(3, -1).T
        car = pixels[pixels.max(axis=1) > 0].astype(np.int64) // (256 // bins)
        index = (car[:, 0] * bins + car[:, 1]) * bins + car[:, 2]
        rows.append(np.bincount(index, minlength=bins**3) / max(1, len(car)))
    return np.asarray(rows)


def report(name: str, probabilities: np.ndarray, true: np.ndarray) -> float:
    from corrode import levels, metrics

    predicted = probabilities.argmax(axis=1)
    scores = metrics.classification_report(true, predicted, levels.NAMES)
    recall = " ".join(f"{level} {value:.3f}" for level, value in scores["recall"].items())  # type: ignore[union-attr]
    ece = metrics.expected_calibration_error(probabilities, true)
    print(f"{name:<22} accuracy {scores['accuracy']:.4f}  recall {recall}  ECE {ece:.4f}")
    return float(scores["accuracy"])


def main() -> None:
    args = parse_arguments()
    import torch

    torch.set_num_threads(args.threads)
    from corrode import levels
    from corrode.classify import Classifier
    from corrode.leveldata import read_level_images, resolve_level_data
    from corrode.train_classifier import TrainClassifierConfig, train_classifier

    counts = {name: getattr(args, name) for name in levels.NAMES}
    tag = f"{args.size}px-noise{args.label_noise}"
    train_data = draw(args.work / f"train-{tag}", args.size, counts, args.label_noise, args.seed)
    held_data = draw(
        args.work / f"held-{args.size}px", args.size, dict.fromkeys(levels.NAMES, args.held), 0.0, 1
    )

    overrides = {
        key: value for key, value in (("width", args.width), ("epochs", args.epochs)) if value is not None
    }
    overrides.update(overrides_from(args.set))
    run = args.work / (args.name or f"run-{tag}")
    config = TrainClassifierConfig(
        data=train_data, out=run, size=args.size, device="cpu", seed=args.seed, **overrides
    )
    if not (run / "best.safetensors").is_file():
        started = time.process_time()
        train_classifier(config, log=lambda line: print(f"  {line}"))
        print(f"classifier trained in {time.process_time() - started:.0f} CPU s ({args.threads} thread(s))")

    found = resolve_level_data(held_data)
    held = read_level_images(found.root, found.masks_root, args.size)
    held_true = true_levels(held_data, held.paths)
    per_level = ", ".join(
        f"{n} {c}" for n, c in zip(levels.NAMES, np.bincount(held_true, minlength=4), strict=True)
    )
    print(f"held-out set: {len(held_true)} images ({per_level}), true levels from its manifest.csv")

    classifier = Classifier.load(run, device="cpu")
    images = torch.from_numpy(held.images).float() / 255
    classifier.predict(images[:64])  # warm-up: the first call's one-off costs would count against the mirror
    started = time.perf_counter()
    probabilities = classifier.predict(images).numpy()
    seconds = time.perf_counter() - started
    accuracy = report("classifier", probabilities, held_true)
    if classifier.model.config.mirror:
        # The same weights reading one view only: what averaging with the mirror image adds, and costs.
        mirrored = classifier.model.config
        classifier.model.config = dataclasses.replace(mirrored, mirror=False)
        started = time.perf_counter()
        single = classifier.predict(images).numpy()
        single_seconds = time.perf_counter() - started
        classifier.model.config = mirrored
        report("classifier, one view", single, held_true)
        print(
            f"inference ({args.threads} thread(s)): {len(images) / seconds:.0f} images/s with the mirror, "
            f"{len(images) / single_seconds:.0f} with one view (time ratio {seconds / single_seconds:.2f})"
        )

    from sklearn.linear_model import LogisticRegression

    found = resolve_level_data(train_data)
    train = read_level_images(found.root, found.masks_root, args.size)
    baseline = LogisticRegression(max_iter=3000, C=10.0).fit(histograms(train.images), train.labels)
    baseline_accuracy = report(
        "colour-histogram LR", baseline.predict_proba(histograms(held.images)), held_true
    )
    print(f"ratio classifier / baseline accuracy: {accuracy / baseline_accuracy:.3f}")


if __name__ == "__main__":
    main()
