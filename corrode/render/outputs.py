"""What render writes besides the composites: the side-by-side grid and the timeline GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from corrode import levels
from corrode.compositing import resize, to_uint8
from corrode.render.files import claimed_temp
from corrode.renderer import Rendering


def grid_image(rendering: Rendering, level_names: Sequence[str]) -> np.ndarray:
    """Original and each level side by side, labelled."""
    from corrode.grids import contact_sheet

    original = first_stage(rendering)
    row = [original] + [rendering.outputs[name] for name in level_names]
    labels = [f"original ({levels.CLEAN.name})", *level_names]
    cell, cell_height = cell_size(original, 512)
    return contact_sheet([row], column_labels=labels, cell=cell, cell_height=cell_height)


def cell_size(image: np.ndarray, longest: int) -> tuple[int, int]:
    """Grid cell (width, height) with the image's aspect ratio, its longer side at most `longest`."""
    height, width = image.shape[:2]
    scale = min(1.0, longest / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def first_stage(rendering: Rendering) -> np.ndarray:
    """The photo itself, or the masked square the generator saw (for --no-composite)."""
    return rendering.image if rendering.composited else to_uint8(rendering.source)


def ease(t: float) -> float:
    """Smoothstep: slow out of one level, slow into the next."""
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def timeline_frame_count(steps: int, frames_per_step: int) -> int:
    return steps * frames_per_step + 1


def timeline_frames(
    stages: Sequence[np.ndarray], frames_per_step: int, *, size: int, labels: Sequence[str] | None = None
) -> list[np.ndarray]:
    """Frames easing from each stage image to the next (all the same shape), at most `size` px."""
    from PIL import Image, ImageDraw

    from corrode.grids import _font

    height, width = stages[0].shape[:2]
    scale = min(1.0, size / max(height, width))
    dims = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = [resize(stage, dims).astype(np.float32) for stage in stages]
    font = _font(max(12, dims[1] // 24))
    frames = []
    for step in range(len(small) - 1):
        for index in range(frames_per_step):
            weight = ease(index / frames_per_step)
            frames.append((small[step] * (1 - weight) + small[step + 1] * weight, step + round(weight)))
    frames.append((small[-1], len(small) - 1))
    result = []
    for array, stage in frames:
        frame = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
        if labels:
            draw = ImageDraw.Draw(frame)
            draw.text(
                (8, 6), labels[stage], fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0)
            )
        result.append(np.asarray(frame))
    return result


def write_gif(path: Path, frames: Sequence[np.ndarray], frame_ms: int, *, hold: int = 6) -> Path:
    """An endlessly looping GIF; frames landing exactly on a level are held `hold` times longer."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    durations = [frame_ms] * len(images)
    durations[0] = durations[-1] = frame_ms * hold
    with claimed_temp(path) as handle:
        images[0].save(
            handle, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        )
    return path


def timeline_stages(rendering: Rendering) -> tuple[list[np.ndarray], list[str]]:
    names = list(levels.RUSTY_NAMES)
    missing = [name for name in names if name not in rendering.outputs]
    if missing:
        raise ValueError(f"the timeline needs every level; missing {', '.join(missing)}")
    return [first_stage(rendering)] + [rendering.outputs[name] for name in names], list(levels.NAMES)
