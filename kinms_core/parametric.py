"""Parameterised galaxies: named parameters (the catalogue's columns) mapped to a model cube.

Surface-brightness families: ``exponential`` (``scalerad``, arcsec) and ``gaussian_ring`` (``ring_radius``,
``ring_width``, arcsec). Rotation curves: ``arctan`` (``vflat`` km/s, ``rturn`` arcsec) and ``rings`` (circular
velocity ``vrot_1 .. vrot_K`` in km/s at fixed radii, interpolated linearly, rising linearly from zero inside the first
ring). Geometry and kinematics, always present: ``flux`` (Jy km/s), ``pa`` and ``inc`` (degrees), ``xc`` and ``yc``
(arcsec offsets of the kinematic centre from the cube's reference pixel along +x and +y pixel axes, as KinMS's phase
centre), ``vsys`` (radio km/s, absolute) and ``sigma`` (gas dispersion, km/s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .model import DEFAULT_CLOUDS, CubeModel
from .obspars import ObsPars

__all__ = [
    "GEOMETRY_PARAMETERS",
    "ROTATION_CURVES",
    "SURFACE_BRIGHTNESS",
    "GalaxyModel",
    "ModelSpec",
    "radius_grid",
]

GEOMETRY_PARAMETERS = ("flux", "pa", "inc", "xc", "yc", "vsys", "sigma")
SURFACE_BRIGHTNESS = {"exponential": ("scalerad",), "gaussian_ring": ("ring_radius", "ring_width")}
ROTATION_CURVES = {"arctan": ("vflat", "rturn"), "rings": ()}

UNITS = {
    "flux": "Jy km/s",
    "pa": "deg",
    "inc": "deg",
    "xc": "arcsec",
    "yc": "arcsec",
    "vsys": "km/s",
    "sigma": "km/s",
    "scalerad": "arcsec",
    "ring_radius": "arcsec",
    "ring_width": "arcsec",
    "vflat": "km/s",
    "rturn": "arcsec",
}


def unit_of(name: str) -> str:
    """Unit of a parameter (``vrot_k`` are km/s)."""
    return "km/s" if name.startswith("vrot_") else UNITS[name]


@dataclass(frozen=True)
class ModelSpec:
    """Which families make the galaxy, and the ring radii of a ``rings`` rotation curve (arcsec)."""

    surface_brightness: str = "exponential"
    rotation_curve: str = "arctan"
    ring_radii: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.surface_brightness not in SURFACE_BRIGHTNESS:
            raise ValueError(
                f"model.surface_brightness {self.surface_brightness!r} is unknown; "
                f"choose one of {sorted(SURFACE_BRIGHTNESS)}"
            )
        if self.rotation_curve not in ROTATION_CURVES:
            raise ValueError(
                f"model.rotation_curve {self.rotation_curve!r} is unknown; choose one of {sorted(ROTATION_CURVES)}"
            )
        radii = tuple(float(r) for r in self.ring_radii)
        if self.rotation_curve == "rings":
            if len(radii) < 2 or any(r <= 0 for r in radii) or any(np.diff(radii) <= 0):
                raise ValueError("model.ring_radii must be at least two increasing positive radii (arcsec) for rings")
        object.__setattr__(self, "ring_radii", radii)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every parameter of the galaxy, in a fixed order."""
        rc = ROTATION_CURVES[self.rotation_curve]
        if self.rotation_curve == "rings":
            rc = tuple(f"vrot_{k + 1}" for k in range(len(self.ring_radii)))
        return GEOMETRY_PARAMETERS + SURFACE_BRIGHTNESS[self.surface_brightness] + rc


def radius_grid(obspars: ObsPars, max_offset: float = 0.0) -> np.ndarray:
    """Radius grid (arcsec) for profiles: a third of a pixel apart (the tutorial's oversampling), out to the cube's
    half-diagonal plus the largest centre offset, and no further (a longer grid only slows interpolation)."""
    step = obspars.cellsize / 3.0
    rmax = 0.5 * math.hypot(obspars.nx, obspars.ny) * obspars.cellsize + abs(max_offset) + 2 * step
    return np.arange(0.0, rmax, step)


class GalaxyModel:
    """Named parameters -> model cube on a fixed grid, reusing one :class:`CubeModel`.

    Parameters
    ----------
    obspars
        Grid of the (trimmed) data cube.
    spec
        Surface-brightness and rotation-curve families.
    n_clouds, seed, threads
        Passed to :class:`CubeModel`.
    max_offset
        Largest centre offset (arcsec) the fit may try; extends the radius grid.
    """

    def __init__(
        self,
        obspars: ObsPars,
        spec: ModelSpec,
        *,
        n_clouds: int = DEFAULT_CLOUDS,
        seed: int = 0,
        threads: int = 1,
        max_offset: float = 0.0,
    ) -> None:
        self.obspars = obspars
        self.spec = spec
        self.names = spec.parameter_names
        self.radius = radius_grid(obspars, max_offset)
        self.cube_model = CubeModel(obspars, n_clouds=n_clouds, seed=seed, threads=threads)
        cx, cy = obspars.centre_pixel
        x_ref, y_ref = obspars.reference_pixel
        # xc, yc are offsets from the reference pixel; KinMS's phase centre is relative to the model centre.
        self._phase_zero = ((x_ref - cx) * obspars.cellsize, (y_ref - cy) * obspars.cellsize)
        self._velocity_zero = obspars.centre_velocity

    def profiles(self, p: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Surface brightness and circular velocity on :attr:`radius`."""
        r = self.radius
        if self.spec.surface_brightness == "exponential":
            sb = np.exp(-r / max(p["scalerad"], 1e-6))
        else:
            sb = np.exp(-0.5 * ((r - p["ring_radius"]) / max(p["ring_width"], 1e-6)) ** 2)
        if self.spec.rotation_curve == "arctan":
            vel = p["vflat"] * 2.0 / np.pi * np.arctan(r / max(p["rturn"], 1e-6))
        else:
            radii = np.concatenate([[0.0], self.spec.ring_radii])
            speeds = np.concatenate([[0.0], [p[f"vrot_{k + 1}"] for k in range(len(self.spec.ring_radii))]])
            vel = np.interp(r, radii, speeds)
        return sb, vel

    def cube(self, p: Mapping[str, float], *, clean: bool = False) -> np.ndarray:
        """Model cube ``(nv, ny, nx)`` for parameter values ``p`` (every name in :attr:`names`)."""
        missing = [name for name in self.names if name not in p]
        if missing:
            raise ValueError(f"missing parameter values {missing}")
        sb, vel = self.profiles(p)
        return self.cube_model.cube(
            inc=p["inc"],
            pa=p["pa"],
            sb_rad=self.radius,
            sb_prof=sb,
            vel_rad=self.radius,
            vel_prof=vel,
            int_flux=p["flux"],
            gas_sigma=p["sigma"],
            phase_cent=(p["xc"] + self._phase_zero[0], p["yc"] + self._phase_zero[1]),
            v_offset=p["vsys"] - self._velocity_zero,
            clean=clean,
        )

    def values(self, theta: Sequence[float]) -> dict[str, float]:
        """Map a vector in :attr:`names` order to a dict."""
        return dict(zip(self.names, (float(t) for t in theta), strict=True))
