"""DiffAugment (Zhao et al., 2020): differentiable colour, translation and cutout for GAN discriminators.

Applied to every image a discriminator sees, real and fake alike, so the discriminator cannot
memorise a few hundred training images while the generator still gets gradients through it.
Images are `(B, 3, H, W)` in [-1, 1]; translation fills with black (-1), as the masked
backgrounds are black. Randomness comes from torch's global generator (saved on checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else list(policy)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r}: expected some of {', '.join(POLICIES)}")
    return tuple(names)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per sample."""
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample by up to `ratio` of its size in each direction, filling with black."""
    b, _, h, w = x.shape
    pad_h, pad_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if pad_h == 0 and pad_w == 0:
        return x
    shift_y = torch.randint(-pad_h, pad_h + 1, (b,), device="cpu").tolist()
    shift_x = torch.randint(-pad_w, pad_w + 1, (b,), device="cpu").tolist()
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h), value=-1.0)
    rows = [
        padded[i, :, pad_h - dy : pad_h - dy + h, pad_w - dx : pad_w - dx + w]
        for i, (dy, dx) in enumerate(zip(shift_y, shift_x, strict=True))
    ]
    return torch.stack(rows)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Blank one square of `ratio` x the image size per sample, at a random place (may overhang)."""
    b, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - cut_h % 2), (b, 1, 1), device=x.device) - cut_h // 2
    left = torch.randint(0, w + (1 - cut_w % 2), (b, 1, 1), device=x.device) - cut_w // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + cut_h) & (xs >= left) & (xs < left + cut_w)
    keep = (~inside).unsqueeze(1).to(x.dtype)
    return x * keep - (1 - keep)


_FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: Sequence[str]) -> torch.Tensor:
    for name in policy:
        x = _FUNCTIONS[name](x)
    return x.contiguous()
