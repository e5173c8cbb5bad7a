"""Moment maps, spectra and position-velocity slices of ``(nv, ny, nx)`` cubes."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

__all__ = [
    "major_axis_direction",
    "mask_extent",
    "moment0",
    "moment1",
    "point_symmetric_pa",
    "pv_diagram",
    "spectrum",
]


def moment0(data: np.ndarray, dv: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Integrated intensity map ``sum(data) * dv`` over channels (NaNs and voxels outside ``mask`` ignored)."""
    values = np.where(np.isfinite(data), data, 0.0)
    if mask is not None:
        values = np.where(mask, values, 0.0)
    return values.sum(axis=0) * dv


def moment1(data: np.ndarray, velocities: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Intensity-weighted mean velocity map (km/s); NaN where the weights sum to zero or less."""
    values = np.where(np.isfinite(data), data, 0.0)
    if mask is not None:
        values = np.where(mask, values, 0.0)
    weight = values.sum(axis=0)
    weighted = np.tensordot(np.asarray(velocities, dtype=float), values, axes=(0, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        mom1 = weighted / weight
    mom1[~(weight > 0)] = np.nan
    return mom1


def spectrum(data: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Spectrum summed over the sky axes (NaNs and voxels outside ``mask`` ignored)."""
    values = np.where(np.isfinite(data), data, 0.0)
    if mask is not None:
        values = np.where(mask, values, 0.0)
    return values.sum(axis=(1, 2))


def mask_extent(mask: np.ndarray, cellsize: float, centre: tuple[float, float]) -> float:
    """The largest sky distance (arcsec) from ``centre`` (0-based pixel ``x, y``) of a pixel where the ``(nv, ny,
    nx)`` signal ``mask`` holds a channel; 0 for an empty mask."""
    ys, xs = np.nonzero(np.asarray(mask, dtype=bool).any(axis=0))
    if xs.size == 0:
        return 0.0
    return float(np.hypot(xs - centre[0], ys - centre[1]).max() * cellsize)


def major_axis_direction(pa: float) -> tuple[float, float]:
    """Unit vector ``(dx, dy)`` in pixel coordinates pointing from the centre to the receding side of a disc at
    position angle ``pa`` (degrees, north through east, KinMS's convention; +x is west, +y north)."""
    rad = np.radians(pa)
    return (-np.sin(rad), np.cos(rad))


def point_symmetric_pa(velocity: np.ndarray, centre: tuple[float, float], vsys: float, step: float = 0.5) -> float:
    """The kinematic PA (degrees, of the receding side, KinMS's convention) of a velocity map without a model: the
    angle about which the map, less ``vsys``, is most nearly bi-antisymmetric (mirror-symmetric about the major
    axis, antisymmetric about the minor axis), as Krajnovic et al. (2006)'s ``fit_kinematic_pa``. The mirror points
    about ``centre`` (x, y pixels) are interpolated bilinearly (nearest pixels would favour multiples of 45 degrees,
    where mirrors fall on pixels); pixels whose mirrors touch NaN are left out; tried every ``step`` degrees. NaN when
    no angle leaves ten pixels."""
    offsets = np.asarray(velocity, dtype=float) - vsys
    y, x = np.indices(offsets.shape, dtype=float)
    dx, dy = x - centre[0], y - centre[1]

    def mirrored(along: np.ndarray, across: np.ndarray, u: tuple[float, float]) -> np.ndarray:
        points = [centre[1] + along * u[1] - across * u[0], centre[0] + along * u[0] + across * u[1]]
        return map_coordinates(offsets, points, order=0, mode="constant", cval=np.nan)

    best, best_misfit = float("nan"), np.inf
    for pa in np.arange(0.0, 360.0, step):
        u = major_axis_direction(pa)
        along, across = dx * u[0] + dy * u[1], dx * u[1] - dy * u[0]
        opposite = mirrored(-along, across, u) + mirrored(-along, -across, u)
        folded = (offsets + mirrored(along, -across, u) - opposite) / 4
        usable = np.isfinite(folded)
        if usable.sum() < 10 or np.mean(np.sign(along[usable]) * offsets[usable]) <= 0:
            continue  # too few pixels, or the receding side is the other way
        misfit = float(np.median(np.abs(offsets[usable] - folded[usable])))
        if misfit < best_misfit:
            best, best_misfit = float(pa), misfit
    return best


def pv_diagram(
    data: np.ndarray,
    centre: tuple[float, float],
    pa: float,
    *,
    width: float = 1.0,
    nsample: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Position-velocity slice along position angle ``pa`` through ``centre``.

    Parameters
    ----------
    data
        Cube ``(nv, ny, nx)``.
    centre
        0-based pixel coordinates ``(x, y)`` of the slice centre.
    pa
        Position angle in degrees (north through east); positive offsets point to the receding side.
    width
        Slit width in pixels: the slice averages ``max(1, round(width))`` parallel cuts spaced by one pixel.
    nsample
        Number of positions along the slit (default: the cube's diagonal in pixels).

    Returns
    -------
    offsets, pv
        Offsets along the slit in pixels, and the slice of shape ``(nv, len(offsets))``.
    """
    nv, ny, nx = data.shape
    half = 0.5 * np.hypot(nx, ny)
    nsample = nsample or int(2 * np.ceil(half)) + 1
    offsets = np.linspace(-half, half, nsample)
    dx, dy = major_axis_direction(pa)
    ncut = max(1, int(round(width)))
    perpendicular = np.arange(ncut) - (ncut - 1) / 2.0
    values = np.where(np.isfinite(data), data, 0.0)
    pv = np.zeros((nv, nsample))
    for shift in perpendicular:
        xs = centre[0] + offsets * dx + shift * dy
        ys = centre[1] + offsets * dy - shift * dx
        for k in range(nv):
            pv[k] += map_coordinates(values[k], [ys, xs], order=1, mode="constant", cval=0.0)
    return offsets, pv / ncut
