"""`corrode render`: a user's own photo back, same size and background, with the car corroded.

Per photo: read (EXIF-aware) -> segment the car (or take a given mask) -> adaptive threshold +
mask optimizer -> crop the car's box with a margin, pad to a square, resize to the generator's
working size, black out the background as in training -> generator none -> LEVEL -> resize the
change back -> composite onto the original with a feathered mask edge. The feather lies inside the
car mask, so every pixel outside the mask keeps its exact original value; the output has the
input's size.

Big images stay cheap: segmentation and mask cleaning run on a copy at most `mask_resolution`
pixels on its long side, and the full-resolution work touches only the car's square.

The command is cut along its jobs: `config` (RenderConfig), `models` (loading, precision, engine),
`plan` (inputs -> jobs, no pixels), `run` (execution), `outputs` (grid, timeline), `files` (temporary
files, leftovers, SIGTERM). The pixel work is shared core: `corrode.compositing` (numpy),
`corrode.renderer` (Renderer), `corrode.tiling` (large squares), `corrode.segment.segment_masks`.
"""

from corrode.compositing import (
    Square,
    car_square,
    composite,
    crop_square,
    feather_alpha,
    generator_input,
    resize,
    to_uint8,
)
from corrode.render.config import DEMO_NOTE, ENGINES, GRID_TAG, RenderConfig, parse_gan_size
from corrode.render.files import Terminated
from corrode.render.models import (
    Models,
    automatic_batch_size,
    cpu_has_fast_bf16,
    fast_precision,
    fast_translator,
    generator_precision,
    load_models,
)
from corrode.render.outputs import (
    cell_size,
    ease,
    first_stage,
    grid_image,
    timeline_frame_count,
    timeline_frames,
    timeline_stages,
    write_gif,
)
from corrode.render.plan import Job, Plan, plan, plan_outputs
from corrode.render.run import make_renderer, render
from corrode.renderer import NoCarError, Renderer, Rendering
from corrode.segment import Segments, segment_masks
from corrode.translate import Translates

__all__ = [
    "DEMO_NOTE",
    "ENGINES",
    "GRID_TAG",
    "Job",
    "Models",
    "NoCarError",
    "Plan",
    "RenderConfig",
    "Renderer",
    "Rendering",
    "Segments",
    "Square",
    "Terminated",
    "Translates",
    "automatic_batch_size",
    "car_square",
    "cell_size",
    "composite",
    "cpu_has_fast_bf16",
    "crop_square",
    "ease",
    "fast_precision",
    "fast_translator",
    "feather_alpha",
    "first_stage",
    "generator_input",
    "generator_precision",
    "grid_image",
    "load_models",
    "make_renderer",
    "parse_gan_size",
    "plan",
    "plan_outputs",
    "render",
    "resize",
    "segment_masks",
    "timeline_frame_count",
    "timeline_frames",
    "timeline_stages",
    "to_uint8",
    "write_gif",
]
