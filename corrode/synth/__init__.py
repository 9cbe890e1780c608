"""`corrode synth`: a procedural data set of car photos, so every command runs with no download.

Layout written under `out`:
- `carvana/train/<car id>_<view:02d>.jpg` + `carvana/train_masks/<same>_mask.gif`: clean cars in a studio,
  several views per car (Carvana's layout);
- `levels/<level>/<stem>.png` + `levels_masks/<level>/<stem>.png`: cars at the four corrosion levels on
  varied backgrounds, filed under their *given* label (after label noise);
- `manifest.csv` (the truth for every image), `config.json`, `preview.png`.

The command is cut along its jobs: `run` (SynthConfig, jobs, pool, writing the set), `scene` (one
photo: car, rust, background), `car`, `bodies`, `camera`, `raster` (drawing a car on a 2x canvas),
`rust` (where rust grows, the flat style), `photo_rust` and `textures` (the photographic style),
`backgrounds`, `noise`.
"""

from corrode.manifest import MANIFEST, MANIFEST_COLUMNS, read_manifest
from corrode.synth.backgrounds import BACKGROUNDS, OUTDOOR, STUDIO
from corrode.synth.bodies import BODY_TYPES
from corrode.synth.run import (
    CARVANA_VIEWS,
    CONFIG,
    OUTPUTS,
    PREVIEW,
    PREVIEW_PER_LEVEL,
    SynthConfig,
    assign_labels,
    synth,
)
from corrode.synth.rust import RUST_BANDS
from corrode.synth.scene import COLOURS, RUST_STYLES, VIEWS, Scene, draw_car, draw_scene

__all__ = [
    "BACKGROUNDS",
    "BODY_TYPES",
    "CARVANA_VIEWS",
    "COLOURS",
    "CONFIG",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "OUTDOOR",
    "OUTPUTS",
    "PREVIEW",
    "PREVIEW_PER_LEVEL",
    "RUST_BANDS",
    "RUST_STYLES",
    "STUDIO",
    "VIEWS",
    "Scene",
    "SynthConfig",
    "assign_labels",
    "draw_car",
    "draw_scene",
    "read_manifest",
    "synth",
]
