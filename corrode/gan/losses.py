"""CycleGAN losses (paper equations 1-3) and the cycle-weight schedule the paper proposes.

Tensors are `(B, C, H, W)`; discriminator outputs are raw scores (no sigmoid).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GAN_LOSSES = ("lsgan", "log")
SCHEDULES = ("constant", "linear", "cosine")


def adversarial_loss(scores: torch.Tensor, real: bool, mode: str = "lsgan") -> torch.Tensor:
    """Loss pushing discriminator `scores` towards real (1) or fake (0).

    `lsgan`: mean squared error to the target (the CycleGAN reference's default);
    `log`: the paper's log loss, binary cross-entropy on the logits.
    """
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    if mode == "lsgan":
        return F.mse_loss(scores.float(), target.float())
    if mode == "log":
        return F.binary_cross_entropy_with_logits(scores.float(), target.float())
    raise ValueError(f"unknown GAN loss {mode!r}: expected one of {', '.join(GAN_LOSSES)}")


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (L1) between an image and its round trip."""
    return F.l1_loss(reconstructed.float(), original.float())


identity_loss = cycle_loss


def cycle_weight(
    step: int, total_steps: int, *, start: float = 10.0, end: float | None = None, schedule: str = "constant"
) -> float:
    """Lambda at `step` of `total_steps`: constant (the paper), or moved from `start` to `end`.

    The paper blames its fixed lambda for outputs that degrade after several epochs; `linear` and
    `cosine` move the weight from `start` to `end` over the run.
    """
    if schedule == "constant" or end is None or total_steps <= 1:
        return start
    progress = min(max(step / (total_steps - 1), 0.0), 1.0)
    if schedule == "linear":
        return start + (end - start) * progress
    if schedule == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lambda schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")


def learning_rate_factor(step: int, total_steps: int, decay_steps: int) -> float:
    """Constant, then linear decay to zero over the last `decay_steps` steps (the reference's policy)."""
    if decay_steps <= 0:
        return 1.0
    start = total_steps - decay_steps
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start + 1) / (decay_steps + 1))


def total_variation(maps: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (both directions) of `(B, C, H, W)` maps.

    On an attention map it is small for a few solid patches and large for speckle of the same area.
    """
    maps = maps.float()
    across = (maps[..., :, 1:] - maps[..., :, :-1]).abs().mean()
    down = (maps[..., 1:, :] - maps[..., :-1, :]).abs().mean()
    return across + down


def r1_penalty(scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): mean over the batch of |d sum(D(real)) / d real|^2.

    `real` must require grad and `scores` be computed from it; the graph is kept so the penalty
    trains the discriminator.
    """
    (gradient,) = torch.autograd.grad(scores.float().sum(), real, create_graph=True)
    return gradient.float().pow(2).flatten(1).sum(1).mean()


def patch_nce(
    made: torch.Tensor,
    seen: torch.Tensor,
    *,
    patches: int = 64,
    temperature: float = 0.07,
    where: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PatchNCE (Park et al., 2020) between feature maps `(B, C, h, w)` of an output and its input.

    At `patches` random positions (drawn among `where`, a `(B, 1, h, w)` bool map, when given) the
    output's feature must pick the input's feature at the same position out of all the drawn ones:
    cross-entropy over cosine similarities / `temperature`. The features are not projected (no MLP
    head), so the loss adds no parameters.
    """
    batch, channels, height, width = made.shape
    weights = torch.ones(batch, height * width, device=made.device)
    if where is not None:
        weights = where.reshape(batch, -1).float() + 1e-6  # everywhere when a map is empty
    count = min(patches, height * width)
    chosen = torch.multinomial(weights.cpu(), count, replacement=False, generator=generator).to(made.device)
    index = chosen[:, None, :].expand(batch, channels, count)
    query = F.normalize(made.float().flatten(2).gather(2, index), dim=1)  # (B, C, P)
    keys = F.normalize(seen.float().flatten(2).gather(2, index), dim=1)
    logits = torch.bmm(query.transpose(1, 2), keys) / temperature  # (B, P, P): row p's positive is p
    target = torch.arange(count, device=made.device).expand(batch, count)
    return F.cross_entropy(logits.reshape(batch * count, count), target.reshape(-1))
