"""Moved to `corrode.synth.backgrounds`; kept so existing imports still work."""

from corrode.synth.backgrounds import BACKGROUNDS, OUTDOOR, STUDIO, cast_shadow, make_background

__all__ = ["BACKGROUNDS", "OUTDOOR", "STUDIO", "cast_shadow", "make_background"]
