"""Seeding every RNG a training loop draws from (Python, NumPy, torch) from one integer."""

from __future__ import annotations

import hashlib


def seed_everything(seed: int) -> None:
    """Seed `random`, NumPy's global RNG and torch from a hash of `seed` (nearby seeds diverge)."""
    import random

    import numpy as np
    import torch

    value = int.from_bytes(hashlib.sha256(str(seed).encode()).digest()[:4], "little")
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
