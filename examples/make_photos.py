"""Make the example photos in examples/photos/: clean synthetic cars outdoors, about 1 MP each.

    python examples/make_photos.py            # rewrites examples/photos/*.jpg, byte-for-byte the same

The cars are drawn by the project's own synthetic-car renderer (`corrode synth`), not photographed.
Each is a 1152 x 864 landscape frame (4:3) cut from a 1152 px square scene, so the photos are not
square like the training data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corrode.images import write_image
from corrode.synth.scene import draw_scene

OUT = Path(__file__).parent / "photos"
SIZE = 1152
HEIGHT = 864
# name -> (seed, body, colour, view, background)
PHOTOS = {
    "blue_sedan": (11, "sedan", "bright blue", "side", "grass"),
    "red_hatchback": (12, "hatchback", "red", "front-quarter", "asphalt"),
    "white_suv": (13, "suv", "white", "rear-quarter", "gravel"),
    "yellow_pickup": (14, "pickup", "yellow", "side", "foliage"),
}


def landscape(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The 4:3 band of the square scene centred on the car (clamped to the frame)."""
    rows = np.flatnonzero(mask.any(axis=1))
    centre = (rows[0] + rows[-1]) // 2
    top = int(np.clip(centre - HEIGHT // 2, 0, SIZE - HEIGHT))
    if rows[0] < top or rows[-1] >= top + HEIGHT:
        raise ValueError("the car does not fit a 4:3 band")
    return image[top : top + HEIGHT]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (seed, body, colour, view, background) in PHOTOS.items():
        scene = draw_scene(
            np.random.default_rng(seed), SIZE, "none", body=body, colour=colour, view=view,
            background=background, flip=False,
        )
        path = write_image(OUT / f"{name}.jpg", landscape(scene.image, scene.mask), quality=90)
        print(path)


if __name__ == "__main__":
    main()
