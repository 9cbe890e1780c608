"""Moved to `corrode.synth.scene`; kept so existing imports still work."""

from corrode.synth.scene import COLOURS, RUST_STYLES, VIEWS, Scene, draw_car, draw_scene

__all__ = ["COLOURS", "RUST_STYLES", "VIEWS", "Scene", "draw_car", "draw_scene"]
