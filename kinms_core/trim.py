"""Trimming a cube to its emission: padded, FFT-friendly spatial size, the same sky and velocity per voxel.

Spatially the kept window holds the mask's bounding box padded by ``pad_beams`` beam FWHM on each side, centred on
it, with a power-of-two size per axis; when the cube is too small for that power of two, the largest ``2^a 3^b``
size that the cube holds and that still holds the padded box; failing that, the whole axis. Spectrally it keeps the
emission's channels plus ``pad_channels`` on each side. The trimmed cube's obspars keep the sky reference (``ra,
dec``) with the reference pixel shifted, and ``v_start`` shifted, so that every kept voxel has the same sky position
and velocity as before. Detected emission is never cut.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .fitsio import obspars_header
from .ingest import _KEPT_CARDS, Cube
from .obspars import ObsPars

__all__ = ["TrimInfo", "axis_window", "trim_cube", "trim_window"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrimInfo:
    """Where a trimmed cube sits in the original one (0-based, stops exclusive) and how its size was chosen.

    Attributes
    ----------
    x0, x1, y0, y1, v0, v1 : int
        The kept window: ``original[v0:v1, y0:y1, x0:x1]``.
    original_shape, shape : tuple of int
        ``(nv, ny, nx)`` before and after.
    size_rule : str
        ``'pow2'``, ``'2^a3^b'`` or ``'full'`` when both sky axes used the same rule, else ``'x:<rule>,y:<rule>'``.
    size_rule_x, size_rule_y : str
        The rule of each sky axis.
    emission_box : tuple of int
        The mask's bounding box ``(v0, v1, y0, y1, x0, x1)`` in the original cube (stops exclusive).
    pad_pixels : float
        Spatial padding asked for, in pixels (``pad_beams`` beam FWHM).
    pad_channels : int
        Spectral padding asked for, in channels.
    """

    x0: int
    x1: int
    y0: int
    y1: int
    v0: int
    v1: int
    original_shape: tuple[int, int, int]
    shape: tuple[int, int, int]
    size_rule: str
    size_rule_x: str
    size_rule_y: str
    emission_box: tuple[int, int, int, int, int, int]
    pad_pixels: float
    pad_channels: int

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """``(v, y, x)`` slices of the kept window in the original cube."""
        return (slice(self.v0, self.v1), slice(self.y0, self.y1), slice(self.x0, self.x1))

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The kept window of an array on the original grid (a mask, a model), as a contiguous copy."""
        if tuple(array.shape) != tuple(self.original_shape):
            raise ValueError(f"array shape {array.shape} is not the original cube's {self.original_shape}")
        return np.ascontiguousarray(array[self.slices])

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary (lists for tuples)."""
        out = asdict(self)
        for key in ("original_shape", "shape", "emission_box"):
            out[key] = [int(v) for v in out[key]]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrimInfo:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for key in ("original_shape", "shape", "emission_box"):
            values[key] = tuple(int(v) for v in values[key])
        return cls(**values)


def _largest_2a3b(limit: int) -> int:
    """Largest ``2^a 3^b <= limit`` (``limit >= 1``)."""
    best = 1
    p3 = 1
    while p3 <= limit:
        size = p3
        while size * 2 <= limit:
            size *= 2
        best = max(best, size)
        p3 *= 3
    return best


def axis_window(lo: int, hi: int, n: int, pad: float) -> tuple[int, int, str]:
    """Kept window ``[start, stop)`` of one sky axis of length ``n`` around emission at ``lo..hi`` (inclusive).

    The window holds ``lo - pad .. hi + pad`` (clipped to the axis), is centred on it where the axis allows, and
    has a power-of-two size (``'pow2'``); else the largest ``2^a 3^b`` that fits the axis and holds the padded box
    (``'2^a3^b'``); else it is the whole axis (``'full'``).
    """
    if not (0 <= lo <= hi < n):
        raise ValueError(f"emission bounds {lo}..{hi} are not within an axis of {n} pixels")
    box_lo = max(0, int(math.floor(lo - pad)))
    box_hi = min(n - 1, int(math.ceil(hi + pad)))
    needed = box_hi - box_lo + 1
    size = 1 << max(0, (needed - 1).bit_length())
    rule = "pow2"
    if size > n:
        size = _largest_2a3b(n)
        rule = "2^a3^b"
        if size < needed:
            size, rule = n, "full"
    start = box_lo - (size - needed) // 2
    start = min(max(start, 0), n - size)
    return start, start + size, rule


def trim_window(
    mask: np.ndarray, obspars: ObsPars, *, pad_beams: float, pad_channels: int, name: str = "cube"
) -> TrimInfo:
    """The window around the mask's emission, padded by ``pad_beams`` beams and ``pad_channels`` channels, at
    FFT-friendly spatial sizes (:func:`axis_window`)."""
    planes = np.flatnonzero(mask.any(axis=(1, 2)))
    if planes.size == 0:
        raise ValueError(f"{name}: the mask is empty, so there is nothing to trim to: check the mask step")
    rows = np.flatnonzero(mask[planes[0] : planes[-1] + 1].any(axis=(0, 2)))
    cols = np.flatnonzero(mask[planes[0] : planes[-1] + 1].any(axis=(0, 1)))
    nv, ny, nx = mask.shape
    pad_pixels = float(pad_beams) * obspars.beam[0] / obspars.cellsize
    x0, x1, rule_x = axis_window(int(cols[0]), int(cols[-1]), nx, pad_pixels)
    y0, y1, rule_y = axis_window(int(rows[0]), int(rows[-1]), ny, pad_pixels)
    v0 = max(0, int(planes[0]) - int(pad_channels))
    v1 = min(nv, int(planes[-1]) + int(pad_channels) + 1)
    box = (int(planes[0]), int(planes[-1]) + 1, int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return TrimInfo(
        x0=x0,
        x1=x1,
        y0=y0,
        y1=y1,
        v0=v0,
        v1=v1,
        original_shape=(nv, ny, nx),
        shape=(v1 - v0, y1 - y0, x1 - x0),
        size_rule=rule_x if rule_x == rule_y else f"x:{rule_x},y:{rule_y}",
        size_rule_x=rule_x,
        size_rule_y=rule_y,
        emission_box=box,
        pad_pixels=pad_pixels,
        pad_channels=int(pad_channels),
    )


def trim_cube(cube: Cube, mask: np.ndarray, *, pad_beams: float = 2.0, pad_channels: int = 3) -> tuple[Cube, TrimInfo]:
    """Trim a cube to its emission.

    Parameters
    ----------
    cube
        The cube (as read by :func:`~kinms_core.ingest.read_cube`).
    mask
        bool ``(nv, ny, nx)`` of the detected emission (:func:`~kinms_core.noise.signal_mask`).
    pad_beams
        Spatial padding on each side of the emission, in beam FWHM (major axis).
    pad_channels
        Spectral padding on each side, in channels.

    Returns
    -------
    trimmed, info
        The trimmed :class:`~kinms_core.ingest.Cube` (its ``mask`` attribute holds the trimmed mask; the input
        cube is not changed) and the :class:`TrimInfo`.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != cube.data.shape:
        raise ValueError(f"{cube.name}: mask shape {mask.shape} does not match the cube's {cube.data.shape}")
    if pad_beams < 0 or pad_channels < 0:
        raise ValueError(f"pad_beams and pad_channels must be >= 0, got {pad_beams}, {pad_channels}")
    info = trim_window(mask, cube.obspars, pad_beams=pad_beams, pad_channels=pad_channels, name=cube.name)
    v0, v1, y0, y1, x0, x1 = info.v0, info.v1, info.y0, info.y1, info.x0, info.x1
    nv, ny, nx = info.original_shape
    op, rule = cube.obspars, info.size_rule
    new_mask = info.apply(mask)
    if int(new_mask.sum()) != int(mask.sum()):  # cannot happen: the window holds the bounding box
        raise RuntimeError(f"{cube.name}: trimming would cut detected emission ({info})")

    x_ref, y_ref = op.reference_pixel
    provenance = replace(op.provenance, trim_offset=[v0, y0, x0], trim_original_shape=[nv, ny, nx])
    new_op = op.replace(
        nx=x1 - x0,
        ny=y1 - y0,
        nv=v1 - v0,
        x_ref=x_ref - x0,
        y_ref=y_ref - y0,
        v_start=op.velocity_start + v0 * op.dv,
        provenance=provenance,
    )
    header = obspars_header(new_op)
    for key in _KEPT_CARDS:
        if key in cube.header:
            header[key] = cube.header[key]
    for line in cube.header.get("HISTORY", []):
        header["HISTORY"] = str(line)
    header["HISTORY"] = f"kinms_core.trim: kept [{v0}:{v1}, {y0}:{y1}, {x0}:{x1}] of {nv}x{ny}x{nx} ({rule})"
    trimmed = replace(
        cube,
        data=info.apply(cube.data),
        obspars=new_op,
        velocities=np.array(cube.velocities[v0:v1], dtype=float),
        header=header,
        wcs=cube.wcs[y0:y1, x0:x1] if cube.wcs is not None else None,
        warnings=list(cube.warnings),
        mask=new_mask,
    )
    log.info(
        "%s: trimmed %dx%dx%d -> %dx%dx%d (%s), emission box v %d:%d y %d:%d x %d:%d",
        cube.name,
        nv,
        ny,
        nx,
        *info.shape,
        rule,
        *info.emission_box,
    )
    return trimmed, info
