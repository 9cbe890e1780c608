"""Procedural car photos with exact masks and rust of known coverage (the drawing behind `corrode synth`)."""

from corrode.synthdata.backgrounds import BACKGROUNDS, OUTDOOR, STUDIO
from corrode.synthdata.bodies import BODY_TYPES
from corrode.synthdata.rust import RUST_BANDS
from corrode.synthdata.scene import COLOURS, RUST_STYLES, VIEWS, Scene, draw_car, draw_scene

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
