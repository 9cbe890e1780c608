"""The CycleGAN image pool: discriminators see a mix of current and past fakes (Shrivastava et al.)."""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    """Holds up to `size` past fakes; each query returns, per image, the new one or (p = 0.5) a stored
    one swapped for it. Size 0 returns the input unchanged. Its own seeded generator and
    `state_dict` make a resumed run draw exactly what an uninterrupted one would.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return images
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                chosen.append(image)
            elif torch.rand(1, generator=self.generator).item() > 0.5:
                index = int(torch.randint(0, self.size, (1,), generator=self.generator).item())
                chosen.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                chosen.append(image)
        return torch.cat(chosen)

    def state_dict(self) -> dict[str, Any]:
        return {
            "images": [image.detach().to("cpu") for image in self.images],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.images = [image.to(device) for image in state["images"]]
        self.generator.set_state(state["generator"])
