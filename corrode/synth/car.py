"""Draw one car (body, cabin, glass, wheels, lights, door gaps) onto a 2x Canvas."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from corrode.synth.bodies import BED, GLASS, PLASTIC, WELL, Body, Profile
from corrode.synth.camera import Camera
from corrode.synth.raster import Canvas

LIGHT = np.array([0.35, 1.0, 0.45]) / np.linalg.norm([0.35, 1.0, 0.45])
TYRE = (30.0, 30.0, 32.0)
WELL_COLOUR = (16.0, 16.0, 18.0)
TRIM = (28.0, 29.0, 31.0)
PLASTIC_COLOUR = (48.0, 49.0, 52.0)
BED_COLOUR = (40.0, 40.0, 42.0)
# Brightness of a side panel from its bottom (0) to its top (1): dark lower half reflecting the ground,
# a crisp horizon line, lighter upper half reflecting the sky, a highlight along the shoulder.
SIDE_HEIGHTS = np.array([0.0, 0.35, 0.48, 0.52, 0.8, 0.9, 0.96, 1.0])
SIDE_FACTORS = np.array([0.62, 0.74, 0.8, 1.0, 0.95, 1.06, 1.14, 0.98])
SIDE_GLOSS = np.array([0.0, 0.01, 0.02, 0.05, 0.04, 0.09, 0.16, 0.05])


@dataclass
class CarGeometry:
    """Where things landed in pixels (2x canvas): rust grows from these, shadows fall from these."""

    arches: list[np.ndarray] = field(default_factory=list)
    sill: np.ndarray | None = None
    doors: list[np.ndarray] = field(default_factory=list)
    hood: np.ndarray | None = None
    footprint: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # ground corners
    wheels: list[np.ndarray] = field(default_factory=list)  # contact points on the ground
    pixels_per_metre: float = 1.0


def _lambert(normal: np.ndarray) -> float:
    return 0.62 + 0.45 * max(0.0, float(normal @ LIGHT))


def _strip_faces(profile: Profile, near_z: float) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(corners (4, 3), outward normal, material) of each extruded edge of a profile."""
    faces = []
    points = profile.points
    for i, material in enumerate(profile.materials):
        a, b = points[i], points[(i + 1) % len(points)]
        dx, dy = b - a
        length = np.hypot(dx, dy)
        if length < 1e-6:
            continue
        normal = np.array([dy / length, -dx / length, 0.0])
        corners = np.array(
            [[a[0], a[1], near_z], [b[0], b[1], near_z], [b[0], b[1], -near_z], [a[0], a[1], -near_z]]
        )
        faces.append((corners, normal, material))
    return faces


def _on_side(points2d: np.ndarray, z: float) -> np.ndarray:
    points2d = np.asarray(points2d, np.float64)
    return np.column_stack([points2d, np.full(len(points2d), z)])


def _paint_colour(colour: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, float]:
    k = _lambert(normal)
    gloss = 0.1 * max(0.0, float(normal[1]))  # tops reflect the sky
    return np.clip(colour * k + 255 * gloss, 0, 255), k


def _glass_fill(camera: Camera, top: float, bottom: float, phase: float):
    def fill(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        t = np.clip((ys - top) / max(bottom - top, 1.0), 0, 1)[..., None]
        base = np.array([92.0, 108.0, 124.0]) * (1 - t) + np.array([22.0, 27.0, 33.0]) * t
        stripe = ((xs * 0.8 + ys) / max(camera.scale, 1.0) * 1.4 + phase) % 1.0
        band = ((stripe < 0.16) * 0.55 + (np.abs(stripe - 0.3) < 0.03) * 0.3)[..., None]
        return base + band * np.array([120.0, 125.0, 130.0]) * (1 - 0.6 * t)

    return fill


def _side_fill(
    camera: Camera, bottom: np.ndarray, top: np.ndarray, colour: np.ndarray, k: float, glint: float
):
    """Side panel paint: SIDE_FACTORS across the panel's height, a soft glint along its length."""
    direction = top - bottom
    span = float(direction @ direction)

    def fill(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        t = np.clip(((xs - bottom[0]) * direction[0] + (ys - bottom[1]) * direction[1]) / span, 0, 1)
        factor = np.interp(t, SIDE_HEIGHTS, SIDE_FACTORS)
        gloss = np.interp(t, SIDE_HEIGHTS, SIDE_GLOSS)
        along = np.exp(-(((xs - glint) / (camera.scale * 0.9)) ** 2))
        gloss = gloss + 0.12 * along * (t > 0.5)
        return np.clip(colour * (k * factor)[..., None] + 255 * gloss[..., None], 0, 255)

    return fill


def _circle(centre_x: float, centre_y: float, radius: float, z: float, steps: int = 28) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    return np.column_stack(
        [centre_x + radius * np.cos(angles), centre_y + radius * np.sin(angles), np.full(steps, z)]
    )


def _wheel(
    canvas: Canvas,
    camera: Camera,
    x: float,
    radius: float,
    z_outer: float,
    z_inner: float,
    rim_colour: np.ndarray,
    spokes: int,
    near: bool,
) -> None:
    outer = _circle(x, radius, radius, z_outer)
    inner = _circle(x, radius, radius, z_inner)
    hull = cv2.convexHull(camera.project(np.vstack([outer, inner])).astype(np.float32))[:, 0, :]
    canvas.fill(hull, TYRE)
    face = camera.project(outer)
    canvas.fill(face, (40.0, 40.0, 43.0))
    rim = camera.project(_circle(x, radius, radius * 0.66, z_outer + 0.005 * np.sign(z_outer)))
    shade = 1.0 if near else 0.55
    canvas.fill(rim, rim_colour * shade)
    canvas.fill(camera.project(_circle(x, radius, radius * 0.56, z_outer)), rim_colour * 0.45 * shade)
    # Spokes: bright wedges over the dark inner disc.
    for i in range(spokes):
        a = 2 * np.pi * i / spokes
        w = 0.22 if spokes <= 5 else 0.14
        pts = [
            (x + radius * 0.12 * np.cos(a - 0.6), radius + radius * 0.12 * np.sin(a - 0.6)),
            (x + radius * 0.58 * np.cos(a - w), radius + radius * 0.58 * np.sin(a - w)),
            (x + radius * 0.58 * np.cos(a + w), radius + radius * 0.58 * np.sin(a + w)),
            (x + radius * 0.12 * np.cos(a + 0.6), radius + radius * 0.12 * np.sin(a + 0.6)),
        ]
        canvas.fill(camera.project(_on_side(np.array(pts), z_outer)), rim_colour * 0.92 * shade)
    canvas.fill(camera.project(_circle(x, radius, radius * 0.14, z_outer, 12)), rim_colour * 1.05 * shade)


def _front_rear_decals(canvas: Canvas, body: Body, camera: Camera, front: bool) -> None:
    """Headlights, grille and plate (front) or tail lights and plate (rear) on the end faces."""
    profile = body.lower.points
    half_w = body.width / 2
    sign = 1.0 if front else -1.0
    end_points = profile[np.abs(profile[:, 0]) > body.length / 2 - 0.45]
    end_points = end_points[np.sign(end_points[:, 0]) == sign]

    def end_x(y: float) -> float:
        ordered = end_points[np.argsort(end_points[:, 1])]
        return float(np.interp(y, ordered[:, 1], ordered[:, 0])) + sign * 0.01

    def quad(y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
        return np.array([[end_x(y0), y0, z0], [end_x(y0), y0, z1], [end_x(y1), y1, z1], [end_x(y1), y1, z0]])

    height = body.nose if front else body.tail
    light = (236.0, 238.0, 240.0) if front else (175.0, 22.0, 28.0)
    for side in (1, -1):
        z0, z1 = side * (half_w - 0.08), side * (half_w - 0.42)
        canvas.fill(camera.project(quad(height - 0.07, height + 0.07, z0, z1)), TRIM, clip_to_car=True)
        canvas.fill(
            camera.project(quad(height - 0.05, height + 0.05, z0 - side * 0.02, z1 + side * 0.02)),
            light,
            clip_to_car=True,
        )
    if front:
        canvas.fill(
            camera.project(quad(height - 0.1, height + 0.05, half_w - 0.5, -half_w + 0.5)),
            TRIM,
            clip_to_car=True,
        )
    plate_y = body.sill + 0.12
    canvas.fill(
        camera.project(quad(plate_y, plate_y + 0.12, 0.26, -0.26)), (225.0, 225.0, 215.0), clip_to_car=True
    )


def draw_car(
    canvas: Canvas, body: Body, camera: Camera, colour: np.ndarray, rng: np.random.Generator
) -> CarGeometry:
    """Paint `body` in `colour` (RGB 0..255) as seen by `camera`; return where its parts landed."""
    colour = np.asarray(colour, np.float64)
    half_w = body.width / 2
    eye = camera.towards * camera.distance
    rim_colour = np.array(rng.choice([[185.0, 188.0, 192.0], [150.0, 152.0, 158.0], [70.0, 72.0, 76.0]]))
    spokes = int(rng.choice([5, 6, 10]))
    geometry = CarGeometry(pixels_per_metre=camera.scale)

    # 1. The far wheels (mostly hidden, they peek out below the body).
    for x in body.wheel_x:
        _wheel(
            canvas,
            camera,
            x,
            body.wheel_radius,
            -half_w + 0.06,
            -half_w + 0.3,
            rim_colour,
            spokes,
            near=False,
        )

    # 2. Faces of the extruded profiles that face the camera, far ones first; the cabin sits on top.
    for profile in (body.lower, body.cabin):
        faces = []
        for corners, normal, material in _strip_faces(profile, profile.half_width):
            if material == WELL or float(normal @ (eye - corners.mean(axis=0))) <= 0:
                continue
            faces.append((camera.depth(corners.mean(axis=0)[None])[0], corners, normal, material))
        for _, corners, normal, material in sorted(faces, key=lambda f: f[0]):
            points = camera.project(corners)
            if material == GLASS:
                ys = points[:, 1]
                canvas.fill(points, _glass_fill(camera, ys.min(), ys.max(), rng.random()))
            elif material == PLASTIC:  # bumpers: metal on older cars, so rust may reach them
                k = _lambert(normal)
                canvas.fill(points, np.array(PLASTIC_COLOUR) * k, paint=True, shade=k)
            elif material == BED:
                canvas.fill(points, np.array(BED_COLOUR) * _lambert(normal))
            else:
                shaded, k = _paint_colour(colour, normal)
                canvas.fill(points, shaded, paint=True, shade=k)
        if profile is body.cabin:
            break
        # Hood outline for rust placement.
        hx0, hx1 = body.hood
        top = profile.points[(profile.points[:, 0] >= hx0 - 0.01) & (profile.points[:, 1] > body.belt - 0.2)]
        top = top[np.argsort(top[:, 0])]
        if len(top) >= 2:
            hood3 = np.vstack([_on_side(top, half_w), _on_side(top[::-1], -half_w)])
            geometry.hood = camera.project(hood3)

    near_z = body.lower.half_width
    # 3. Wheel wells: dark openings behind the near wheels.
    arch_sets = []
    points = body.lower.points
    materials = body.lower.materials
    current: list[np.ndarray] = []
    for i, material in enumerate(materials):
        if material == WELL:
            current.append(points[i])
        elif current:
            current.append(points[i])
            arch_sets.append(np.array(current))
            current = []
    for arch in arch_sets:
        well = camera.project(_on_side(arch, near_z - 0.01))
        canvas.fill(well, WELL_COLOUR)
        geometry.arches.append(camera.project(_on_side(arch, near_z)))

    # 4. Near wheels.
    for x in body.wheel_x:
        _wheel(
            canvas, camera, x, body.wheel_radius, near_z - 0.04, near_z - 0.28, rim_colour, spokes, near=True
        )
        geometry.wheels.append(camera.project(np.array([[x, 0.0, near_z - 0.15]]))[0])

    # 5. Cabin side: paint, then black trim and glass for the side windows.
    cabin_z = body.cabin.half_width
    normal = np.array([0.0, 0.0, 1.0])
    shaded, k = _paint_colour(colour, normal)
    canvas.fill(camera.project(_on_side(body.cabin.points, cabin_z)), shaded * 0.97, paint=True, shade=k)
    for window in body.windows:
        centre = window.mean(axis=0)
        trim = centre + (window - centre) * 1.06
        canvas.fill(camera.project(_on_side(trim, cabin_z + 0.002)), TRIM)
        projected = camera.project(_on_side(window, cabin_z + 0.004))
        ys = projected[:, 1]
        canvas.fill(projected, _glass_fill(camera, ys.min(), ys.max(), rng.random()))

    # 6. The near side panel with its glossy gradient.
    side = camera.project(_on_side(body.lower.points, near_z))
    mid_x = 0.0
    bottom = camera.project(np.array([[mid_x, body.sill, near_z]]))[0]
    top = camera.project(np.array([[mid_x, body.belt, near_z]]))[0]
    glint = camera.project(np.array([[rng.uniform(-1.0, 1.5), body.belt, near_z]]))[0][0]
    canvas.fill(side, _side_fill(camera, bottom, top, colour, k, glint), paint=True, shade=k)

    # 7. Details on the side: door gaps and handles, side lights, mirror.
    gap = np.clip(colour * 0.35, 0, 255)
    for door in body.doors:
        canvas.line(camera.project(_on_side(door, near_z + 0.002)), gap, max(1.0, camera.scale * 0.012))
    geometry.doors = [camera.project(_on_side(door, near_z)) for door in body.doors]
    door_x = [d[0, 0] for d in body.doors[:-1]]
    for x in door_x[:2]:
        hx = x - 0.25
        handle = np.array(
            [
                (hx, body.belt - 0.14),
                (hx - 0.16, body.belt - 0.14),
                (hx - 0.16, body.belt - 0.1),
                (hx, body.belt - 0.1),
            ]
        )
        canvas.fill(camera.project(_on_side(handle, near_z + 0.003)), gap, clip_to_car=True)
    half = body.length / 2
    head = np.array(
        [
            (half - 0.03, body.nose - 0.05),
            (half - 0.32, body.nose - 0.02),
            (half - 0.3, body.nose + 0.08),
            (half - 0.05, body.nose + 0.07),
        ]
    )
    canvas.fill(camera.project(_on_side(head, near_z + 0.003)), (230.0, 232.0, 235.0), clip_to_car=True)
    tail = np.array(
        [
            (-half + 0.03, body.tail - 0.06),
            (-half + 0.22, body.tail - 0.05),
            (-half + 0.22, body.tail + 0.06),
            (-half + 0.05, body.tail + 0.06),
        ]
    )
    canvas.fill(camera.project(_on_side(tail, near_z + 0.003)), (165.0, 20.0, 26.0), clip_to_car=True)
    cowl = body.hood[0]
    mirror = np.array(
        [
            [cowl - 0.05, body.belt + 0.05, near_z + 0.14],
            [cowl - 0.27, body.belt + 0.05, near_z + 0.14],
            [cowl - 0.27, body.belt + 0.2, near_z + 0.12],
            [cowl - 0.1, body.belt + 0.19, near_z + 0.1],
        ]
    )
    canvas.fill(camera.project(mirror), shaded * 0.9, paint=True, shade=k)

    # 8. The end faces that face the camera.
    if camera.towards[0] > 0.2:
        _front_rear_decals(canvas, body, camera, front=True)
    elif camera.towards[0] < -0.2:
        _front_rear_decals(canvas, body, camera, front=False)

    sill = np.array([(x, body.sill + 0.03) for x in np.linspace(-half + 0.1, half - 0.1, 24)])
    geometry.sill = camera.project(_on_side(sill, near_z))
    footprint = np.array([[half, 0, half_w], [half, 0, -half_w], [-half, 0, -half_w], [-half, 0, half_w]])
    geometry.footprint = camera.project(footprint)
    return geometry
