"""Car bodies as two extruded side profiles (lower body + cabin), in metres.

x runs from the rear (-) to the front (+), y is height above the ground, z is across the car
(+ is the near side in a side view). Each profile is a counter-clockwise polygon whose edges carry a
material; extruding an edge across the car's width gives one face (bumper, hood, windscreen, roof...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BODY_TYPES: tuple[str, ...] = ("sedan", "hatchback", "suv", "pickup")

# Materials of profile edges (the faces they become) and of decals.
PAINT, GLASS, WELL, PLASTIC, BED = "paint", "glass", "well", "plastic", "bed"


@dataclass
class Profile:
    points: np.ndarray  # (N, 2) x, y counter-clockwise
    materials: list[str]  # material of edge i -> i+1
    half_width: float


@dataclass
class Body:
    name: str
    length: float
    width: float
    lower: Profile
    cabin: Profile
    wheel_x: tuple[float, float]
    wheel_radius: float
    windows: list[np.ndarray]  # side-window polygons (x, y) on the cabin's side
    doors: list[np.ndarray] = field(default_factory=list)  # door-gap polylines (x, y) on the side
    sill: float = 0.3  # height of the body's bottom edge
    belt: float = 0.9  # height of the beltline (top of the lower body at the doors)
    hood: tuple[float, float] = (0.0, 0.0)  # x range of the hood (moderate rust spreads there)
    nose: float = 0.6  # height of the headlights at the front end
    tail: float = 0.8  # height of the tail lights at the rear end


def _arch(x: float, radius: float, centre_y: float, sill: float, steps: int = 9) -> list[tuple[float, float]]:
    """Points over a wheel arch, left to right, from the sill line up and over the wheel."""
    start = np.arcsin(np.clip((sill - centre_y) / radius, -1, 1))
    angles = np.linspace(np.pi - start, start, steps)
    return [(x + radius * np.cos(a), centre_y + radius * np.sin(a)) for a in angles]


def _lower(
    front: float,
    rear: float,
    sill: float,
    wheel_x: tuple[float, float],
    wheel_radius: float,
    top: list[tuple[float, float, str]],
) -> Profile:
    """A lower body: bottom edge with two wheel arches from rear to front, then `top` from front to rear.

    `top` lists (x, y, material-of-the-edge-leaving-this-point), starting at the front bumper's bottom.
    """
    arch_radius = wheel_radius * 1.18
    centre = wheel_radius
    points: list[tuple[float, float]] = [(rear + 0.05, sill)]
    materials: list[str] = [PAINT]
    for x in sorted(wheel_x):
        arch = _arch(x, arch_radius, centre, sill)
        points.extend(arch)
        materials.extend([WELL] * (len(arch) - 1) + [PAINT])
    chain, chain_materials = _round([(x, y) for x, y, _ in top], [m for _, _, m in top[:-1]])
    points.extend(chain)
    materials.extend([*chain_materials, top[-1][2]])
    del front
    return Profile(np.asarray(points, np.float64), materials, 0.0)


def _round(
    points: list[tuple[float, float]], materials: list[str], cut: float = 0.2, iterations: int = 2
) -> tuple[list[tuple[float, float]], list[str]]:
    """Round the corners of an open chain (Chaikin's corner cutting; the two ends stay put).

    `materials[i]` belongs to the edge from point i to i+1; a cut corner between two materials is paint.
    """
    for _ in range(iterations):
        count = len(points) - 1  # edges
        chain: list[tuple[float, float]] = [points[0]]
        kinds: list[str] = []
        for i in range(count):
            a, b = np.asarray(points[i]), np.asarray(points[i + 1])
            if i > 0:
                chain.append(tuple((1 - cut) * a + cut * b))
            kinds.append(materials[i])  # the straight middle of edge i
            if i < count - 1:
                chain.append(tuple(cut * a + (1 - cut) * b))
                kinds.append(materials[i] if materials[i] == materials[i + 1] else PAINT)  # the cut corner
        chain.append(points[-1])
        points, materials = chain, kinds
    return points, materials


def make_body(name: str, rng: np.random.Generator) -> Body:
    """A body of type `name` with proportions jittered a few percent."""
    j = lambda value, spread=0.04: value * (1 + rng.uniform(-spread, spread))  # noqa: E731
    if name == "sedan":
        length, width, r = j(4.7), j(1.8), j(0.33)
        half = length / 2
        sill, belt = j(0.32), j(0.95)
        wx = (-half + j(0.95), -half + j(0.95) + j(2.8))
        cowl, deck = wx[1] - j(0.55), -half + j(0.85)
        lower = _lower(
            half,
            -half,
            sill,
            wx,
            r,
            [
                (half - 0.08, sill + 0.02, PLASTIC),
                (half, j(0.55), PAINT),
                (half - 0.06, j(0.78), PAINT),
                (half - 0.3, j(0.85), PAINT),
                (cowl, belt, PAINT),
                (deck, belt + 0.02, PAINT),
                (-half + 0.08, j(0.97), PAINT),
                (-half, j(0.72), PLASTIC),
                (-half + 0.02, sill + 0.03, PAINT),
            ],
        )
        roof_h = j(1.45)
        cabin_pts = [
            (deck + 0.05, belt),
            (cowl, belt),
            (cowl - j(0.85), roof_h),
            (deck + j(0.75), roof_h - 0.02),
            (deck + 0.05, belt),
        ]
        cabin_mat = [PAINT, GLASS, PAINT, GLASS]
        windows = [
            np.array(
                [
                    (cowl - 0.12, belt + 0.05),
                    (cowl - 0.9, roof_h - 0.07),
                    ((cowl + deck) / 2, roof_h - 0.07),
                    ((cowl + deck) / 2, belt + 0.05),
                ]
            ),
            np.array(
                [
                    ((cowl + deck) / 2 - 0.1, belt + 0.05),
                    ((cowl + deck) / 2 - 0.1, roof_h - 0.07),
                    (deck + 0.78, roof_h - 0.08),
                    (deck + 0.22, belt + 0.05),
                ]
            ),
        ]
        doors_x = (cowl + 0.05, (cowl + deck) / 2 - 0.05, deck + 0.25)
        nose, tail, hood = j(0.68), j(0.85), (cowl, half)
    elif name == "hatchback":
        length, width, r = j(4.1), j(1.75), j(0.31)
        half = length / 2
        sill, belt = j(0.3), j(0.93)
        wx = (-half + j(0.7), -half + j(0.7) + j(2.55))
        cowl, back = wx[1] - j(0.6), -half + 0.1
        lower = _lower(
            half,
            -half,
            sill,
            wx,
            r,
            [
                (half - 0.08, sill + 0.02, PLASTIC),
                (half, j(0.55), PAINT),
                (half - 0.08, j(0.78), PAINT),
                (half - 0.35, j(0.84), PAINT),
                (cowl, belt, PAINT),
                (back, belt + 0.03, PAINT),
                (-half, j(0.65), PLASTIC),
                (-half + 0.03, sill + 0.03, PAINT),
            ],
        )
        roof_h = j(1.47)
        cabin_pts = [
            (back, belt + 0.03),
            (cowl, belt),
            (cowl - j(0.8), roof_h),
            (back + j(0.3), roof_h - 0.03),
            (back, belt + 0.03),
        ]
        cabin_mat = [PAINT, GLASS, PAINT, GLASS]
        mid = cowl - 1.05
        windows = [
            np.array(
                [
                    (cowl - 0.12, belt + 0.05),
                    (cowl - 0.85, roof_h - 0.07),
                    (mid, roof_h - 0.07),
                    (mid, belt + 0.05),
                ]
            ),
            np.array(
                [
                    (mid - 0.1, belt + 0.05),
                    (mid - 0.1, roof_h - 0.07),
                    (back + 0.38, roof_h - 0.09),
                    (back + 0.2, belt + 0.06),
                ]
            ),
        ]
        doors_x = (cowl + 0.05, mid - 0.05, back + 0.45)
        nose, tail, hood = j(0.68), j(0.85), (cowl, half)
    elif name == "suv":
        length, width, r = j(4.75), j(1.92), j(0.38)
        half = length / 2
        sill, belt = j(0.45), j(1.12)
        wx = (-half + j(0.95), -half + j(0.95) + j(2.85))
        cowl, back = wx[1] - j(0.5), -half + 0.1
        lower = _lower(
            half,
            -half,
            sill,
            wx,
            r,
            [
                (half - 0.05, sill + 0.02, PLASTIC),
                (half, j(0.75), PAINT),
                (half - 0.05, j(1.0), PAINT),
                (half - 0.3, j(1.05), PAINT),
                (cowl, belt, PAINT),
                (back, belt + 0.02, PAINT),
                (-half, j(0.8), PLASTIC),
                (-half + 0.02, sill + 0.03, PAINT),
            ],
        )
        roof_h = j(1.78)
        cabin_pts = [
            (back, belt + 0.02),
            (cowl, belt),
            (cowl - j(0.7), roof_h),
            (back + j(0.15), roof_h - 0.02),
            (back, belt + 0.02),
        ]
        cabin_mat = [PAINT, GLASS, PAINT, GLASS]
        mid = cowl - 1.1
        windows = [
            np.array(
                [
                    (cowl - 0.1, belt + 0.05),
                    (cowl - 0.75, roof_h - 0.08),
                    (mid, roof_h - 0.08),
                    (mid, belt + 0.05),
                ]
            ),
            np.array(
                [
                    (mid - 0.1, belt + 0.05),
                    (mid - 0.1, roof_h - 0.08),
                    (mid - 1.0, roof_h - 0.08),
                    (mid - 1.0, belt + 0.05),
                ]
            ),
            np.array(
                [
                    (mid - 1.1, belt + 0.05),
                    (mid - 1.1, roof_h - 0.08),
                    (back + 0.22, roof_h - 0.09),
                    (back + 0.12, belt + 0.06),
                ]
            ),
        ]
        doors_x = (cowl + 0.05, mid - 0.05, mid - 1.05)
        nose, tail, hood = j(0.85), j(1.0), (cowl, half)
    elif name == "pickup":
        length, width, r = j(5.3), j(1.95), j(0.38)
        half = length / 2
        sill, belt = j(0.5), j(1.15)
        wx = (-half + j(1.05), -half + j(1.05) + j(3.3))
        cowl = wx[1] - j(0.5)
        cab_back = cowl - j(1.55)
        lower = _lower(
            half,
            -half,
            sill,
            wx,
            r,
            [
                (half - 0.05, sill + 0.02, PLASTIC),
                (half, j(0.8), PAINT),
                (half - 0.05, j(1.05), PAINT),
                (half - 0.3, j(1.1), PAINT),
                (cowl, belt, PAINT),
                (cab_back, belt, PAINT),
                (cab_back - 0.05, belt + 0.02, BED),
                (-half + 0.05, belt + 0.02, PAINT),
                (-half, j(0.75), PLASTIC),
                (-half + 0.02, sill + 0.03, PAINT),
            ],
        )
        roof_h = j(1.85)
        cabin_pts = [
            (cab_back, belt),
            (cowl, belt),
            (cowl - j(0.65), roof_h),
            (cab_back + 0.08, roof_h - 0.02),
            (cab_back, belt),
        ]
        cabin_mat = [PAINT, GLASS, PAINT, GLASS]
        mid = cowl - 0.95
        windows = [
            np.array(
                [
                    (cowl - 0.1, belt + 0.05),
                    (cowl - 0.7, roof_h - 0.08),
                    (mid, roof_h - 0.08),
                    (mid, belt + 0.05),
                ]
            ),
            np.array(
                [
                    (mid - 0.1, belt + 0.05),
                    (mid - 0.1, roof_h - 0.08),
                    (cab_back + 0.15, roof_h - 0.08),
                    (cab_back + 0.12, belt + 0.05),
                ]
            ),
        ]
        doors_x = (cowl + 0.05, mid - 0.05, cab_back + 0.05)
        nose, tail, hood = j(0.9), j(1.0), (cowl, half)
    else:
        raise ValueError(f"unknown body type {name!r}")
    # Door gaps: verticals from the sill to the beltline, and the door bottoms along the sill.
    doors = [np.array([(x, sill + 0.06), (x, belt - 0.02)]) for x in doors_x]
    doors.append(np.array([(doors_x[0], sill + 0.06), (doors_x[2], sill + 0.06)]))
    lower.half_width = width / 2
    # Round the cabin's windscreen, roof and rear-window corners (its base on the beltline stays straight).
    top, top_materials = _round(cabin_pts[1:], cabin_mat[1:], cut=0.12, iterations=2)
    cabin = Profile(
        np.asarray([cabin_pts[0], *top[:-1]], np.float64), [cabin_mat[0], *top_materials], width / 2 * 0.88
    )
    return Body(name, length, width, lower, cabin, wx, r, windows, doors, sill, belt, hood, nose, tail)
