"""A simple camera: yaw around the car, a slight downward pitch, mild perspective, metres -> pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Camera:
    yaw: float  # radians; 0 = side view of the near (+z) side, > 0 turns towards the front
    pitch: float  # radians; > 0 looks down on the car
    distance: float  # metres from the car's centre (perspective strength)
    scale: float = 1.0  # pixels per metre at the car's centre
    centre: tuple[float, float] = (0.0, 0.0)  # pixel position of the car's origin

    def __post_init__(self) -> None:
        c = np.array(
            [np.sin(self.yaw) * np.cos(self.pitch), np.sin(self.pitch), np.cos(self.yaw) * np.cos(self.pitch)]
        )
        right = np.cross([0.0, 1.0, 0.0], c)
        right /= np.linalg.norm(right)
        self.towards = c  # unit vector from the car to the camera
        self.right = right
        self.up = np.cross(c, right)

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance towards the camera (larger = nearer) of (N, 3) points."""
        return np.asarray(points) @ self.towards

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) metres -> (N, 2) pixels (x right, y down)."""
        points = np.asarray(points, np.float64)
        depth = points @ self.towards
        factor = self.distance / (self.distance - depth)
        u = (points @ self.right) * factor
        v = (points @ self.up) * factor
        return np.stack([self.centre[0] + u * self.scale, self.centre[1] - v * self.scale], axis=1)

    def facing(self, normal: np.ndarray) -> float:
        """How much a face with this outward normal faces the camera (> 0 visible)."""
        return float(np.dot(normal, self.towards))
