"""`corrode train-gan`: train the multi-domain CycleGAN on level folders of masked cars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corrode.cli.training import Option, Trainer, register

# Kept equal to the library's names by a test (importing them here would import torch for --help).
GENERATORS = ("separate", "shared")
UPSAMPLES = ("transposed", "resize")
DISCRIMINATORS = ("paper", "patch", "multiscale")
DISCRIMINATOR_NORMS = ("none", "spectral")
GAN_LOSSES = ("lsgan", "log")
SCHEDULES = ("constant", "linear", "cosine")
IDENTITY_MAPPINGS = ("both", "to-clean")
RUST_LAYERS = ("free", "palette")
CRITIC_POOLINGS = ("car", "car_max")


def _summary(run_dir: Path) -> dict[str, Any]:
    from corrode import runs

    rows = runs.MetricsLog(run_dir / runs.METRICS).rows()
    return {"steps": len(rows), "last": rows[-1] if rows else {}}


def _on_step(progress: Any):
    task = progress.add_task("train-gan", total=None)

    def report(step: int, total: int, losses: dict[str, float]) -> None:
        progress.update(
            task,
            completed=step,
            total=total,
            description=f"G {losses['gen_total']:.3f}  D {losses['disc_total']:.3f}  lr {losses['lr']:.2g}",
        )

    return report


register(
    Trainer(
        name="train-gan",
        config="corrode.train_gan:TrainGanConfig",
        train="corrode.train_gan:train_gan",
        data_help="Folder with none/ mild/ moderate/ severe/ of masked cars (black background), "
        "optionally with a masks/ folder (<level>/<stem>.png) applied on the fly.",
        doc="""Train the paper's multi-domain CycleGAN: six generators (none <-> each level), four
        discriminators.

        Multi-GPU: torchrun --nproc-per-node N -m corrode train-gan DATA --out runs/gan
        """,
        presets={
            "paper": "the paper's setup (the defaults shown)",
            "recommended": "attention generator, identity loss on the rust removers, lambda 3, cycle noise "
            "0.1, PatchGAN discriminator, EMA 0.999 (keeps each car's paint, grows rust mild -> severe)",
        },
        presets_from="corrode.train_gan:PRESETS",
        options={
            "masks": Option(("--masks",), "Masks folder (<level>/<stem>.png) to apply on the fly."),
            "image_size": Option(
                ("--size", "--load-size"), "Square size the images are loaded at, multiple of 4."
            ),
            "crop_size": Option(
                ("--crop-size",),
                "Train on one random square of this size per level and step, cut from the images "
                "loaded at --load-size (0: the whole image; the reference crops 256 of 286). Sample "
                "grids translate the whole loaded image.",
            ),
            "batch_size": Option(("--batch-size",), "Images per level per step."),
            "epochs": Option(("--epochs",), "Epochs (passes over the largest level)."),
            "decay_epochs": Option(
                ("--decay-epochs",), "Last epochs over which the lr falls to 0.", shown="half of --epochs"
            ),
            "learning_rate": Option(("--lr",), "Adam learning rate."),
            "base_channels": Option(("--base-channels",), "Generator width (64 in the paper)."),
            "residual_blocks": Option(("--residual-blocks",), "Generator residual blocks (9 in the paper)."),
            "generator": Option(
                ("--generator",),
                "separate (six generators, the paper) or shared (one conditional).",
                GENERATORS,
            ),
            "attention": Option(
                ("--attention/--no-attention",), "Generators paint a corrosion layer through a soft map."
            ),
            "upsample": Option(
                ("--upsample",),
                "Generator upsampling: transposed (the paper) or resize (nearest + conv, no checkerboard).",
                UPSAMPLES,
            ),
            "rust_layer": Option(
                ("--rust-layer",),
                "What the rust painters paint: free (any colour) or palette (mixes of the shipped rust's "
                "colours; needs --attention).",
                RUST_LAYERS,
            ),
            "discriminator": Option(
                ("--discriminator",),
                "paper (8x8 at 256 px), patch (70x70 PatchGAN) or multiscale (PatchGANs at full, half size).",
                DISCRIMINATORS,
            ),
            "discriminator_norm": Option(
                ("--discriminator-norm",),
                "Spectral normalisation of the discriminators' convolutions.",
                DISCRIMINATOR_NORMS,
            ),
            "r1_weight": Option(
                ("--r1",), "R1 penalty weight (gamma) on the discriminators' real inputs; 0 = off."
            ),
            "discriminator_channels": Option(("--discriminator-channels",), "Discriminator width."),
            "gan_loss": Option(("--gan-loss",), "lsgan, or log (the paper's).", GAN_LOSSES),
            "cycle_weight": Option(("--lambda",), "Cycle-consistency weight."),
            "cycle_schedule": Option(
                ("--lambda-schedule",), "Lambda over the run (to --lambda-final).", SCHEDULES
            ),
            "cycle_weight_final": Option(("--lambda-final",), "Lambda at the end of a scheduled run."),
            "identity_mappings": Option(
                ("--identity-mappings",),
                "both (every generator; the reference) or to-clean (only rust removers keep clean cars).",
                IDENTITY_MAPPINGS,
            ),
            "cycle_noise": Option(
                ("--cycle-noise",),
                "Noise std (of [-1, 1]) added to translations before the way back; 0 = off.",
            ),
            "ema": Option(
                ("--ema",), "Average the generators' weights with this decay (e.g. 0.999); 0 = off."
            ),
            "identity_weight": Option(("--identity",), "Identity loss weight, times lambda (0 = off)."),
            "attention_tv": Option(
                ("--attention-tv",),
                "Total-variation weight on the attention maps (rust in patches); 0 = off.",
            ),
            "attention_sparsity": Option(
                ("--attention-sparsity",), "Weight of the attention maps' mean (paint less); 0 = off."
            ),
            "attention_binary": Option(
                ("--attention-binary",),
                "Weight of the maps' m(1-m) over the car (rust opaque or absent, no haze); 0 = off.",
            ),
            "nce_weight": Option(
                ("--nce",),
                "PatchNCE weight on the rust painters' encoder features (Park et al. 2020); 0 = off.",
            ),
            "level_weight": Option(
                ("--level-weight",),
                "Weight of a level critic's classification loss on the translations (StarGAN); 0 = off.",
            ),
            "critic_pooling": Option(
                ("--critic-pooling",),
                "car (the critic averages over the car) or car_max (also each feature's maximum there).",
                CRITIC_POOLINGS,
            ),
            "critic_batch": Option(
                ("--critic-batch",), "Extra real images per level the level critic learns from each step."
            ),
            "critic_lr_factor": Option(
                ("--critic-lr-factor",), "The level critic's learning rate over the GAN's."
            ),
            "critic_warmup": Option(
                ("--critic-warmup",), "Steps of the level critic alone on real images before the GAN's first."
            ),
            "critic_augment": Option(
                ("--critic-augment",), "DiffAugment policy for the real images the level critic learns from."
            ),
            "pool_size": Option(("--pool-size",), "Past fakes per discriminator."),
            "diffaugment": Option(
                ("--diffaugment",), "Discriminator-side augmentation: e.g. color,translation,cutout."
            ),
            "flip": Option(("--flip/--no-flip",), "Random horizontal flips."),
            "samples": Option(("--samples",), "Clean cars in each epoch's sample grid."),
            "checkpoint_every": Option(
                ("--checkpoint-every",), "Steps between checkpoints (and every epoch end)."
            ),
        },
        summary=_summary,
        on_step=_on_step,
    )
)
