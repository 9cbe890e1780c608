"""Old home of the synth drawing modules, now `corrode.synth` (kept so existing imports still work).

Import from `corrode.synth` (and its modules `corrode.synth.scene`, `corrode.synth.backgrounds`, ...);
this package and its two modules go once nothing imports them.
"""

from corrode.synth import (
    BACKGROUNDS,
    BODY_TYPES,
    COLOURS,
    OUTDOOR,
    RUST_BANDS,
    RUST_STYLES,
    STUDIO,
    VIEWS,
    Scene,
    draw_car,
    draw_scene,
)

__all__ = [
    "BACKGROUNDS",
    "BODY_TYPES",
    "COLOURS",
    "OUTDOOR",
    "RUST_BANDS",
    "RUST_STYLES",
    "STUDIO",
    "VIEWS",
    "Scene",
    "draw_car",
    "draw_scene",
]
