"""Observational parameters of a cube: grid, channel width, beam and the WCS reference.

Pixel and channel conventions (KinMS's): pixel ``i`` has its centre at coordinate ``i``. ``phase_cent=(0, 0)`` and
``v_offset=0`` put the galaxy at 0-based channel coordinate ``nv / 2`` and, in the beam-convolved cube, at pixel
coordinate ``ceil(n / 2)`` on each sky axis: ``n / 2`` on an even axis; on an odd axis the cloudlets are binned about
``n / 2`` (a pixel edge) and KinMS's beam, centred at ``n / 2`` too, moves them half a pixel on, to ``(n + 1) / 2``.
The sky axes run with RA decreasing along x (east to the left) and Dec increasing along y; channel velocity increases
with channel index (``dv > 0``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ObsPars"]


def _positive(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class ObsPars:
    """Grid, beam and WCS reference of a data cube.

    Parameters
    ----------
    nx, ny, nv : int
        Number of pixels along x (RA), y (Dec) and channels.
    cellsize : float
        Pixel size in arcsec.
    dv : float
        Channel width in km/s (positive; velocity increases with channel index).
    beam : tuple of float
        ``(bmaj, bmin, bpa)``: FWHM major and minor axes in arcsec and position angle in degrees, measured from
        north through east (the FITS BPA convention).
    ra, dec : float
        Sky position (degrees) of the reference pixel ``(x_ref, y_ref)``.
    x_ref, y_ref : float or None
        0-based pixel coordinates of the sky reference; ``None`` means the model centre ``(nx/2, ny/2)``.
    v_start : float or None
        Radio velocity (km/s) of the centre of channel 0; ``None`` puts velocity 0 at the model centre
        (``-dv * nv / 2``), as KinMS does.
    restfreq : float or None
        Rest frequency in Hz, when known.
    specsys, radesys, projection, bunit : str
        Spectral reference frame, celestial frame, sky projection code and brightness unit.
    """

    nx: int
    ny: int
    nv: int
    cellsize: float
    dv: float
    beam: tuple[float, float, float]
    ra: float = 0.0
    dec: float = 0.0
    x_ref: float | None = None
    y_ref: float | None = None
    v_start: float | None = None
    restfreq: float | None = None
    specsys: str = "BARYCENT"
    radesys: str = "ICRS"
    projection: str = "SIN"
    bunit: str = "Jy/beam"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("nx", "ny", "nv"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        _positive("cellsize", self.cellsize)
        _positive("dv", self.dv)
        beam = np.atleast_1d(np.asarray(self.beam, dtype=float))
        if beam.size == 1:
            beam = np.array([beam[0], beam[0], 0.0])
        elif beam.size == 2:
            beam = np.array([beam[0], beam[1], 0.0])
        if beam.size != 3 or not np.all(np.isfinite(beam)):
            raise ValueError(f"beam must be (bmaj, bmin, bpa) in arcsec, arcsec, degrees, got {self.beam!r}")
        bmaj, bmin, bpa = (float(b) for b in beam)
        _positive("beam major axis (bmaj)", bmaj)
        _positive("beam minor axis (bmin)", bmin)
        if bmin > bmaj:
            bmaj, bmin, bpa = bmin, bmaj, bpa + 90.0
        object.__setattr__(self, "beam", (bmaj, bmin, float(bpa)))
        for name in ("cellsize", "dv", "ra", "dec"):
            object.__setattr__(self, name, float(getattr(self, name)))

    # ----------------------------------------------------------------- derived quantities
    @property
    def shape(self) -> tuple[int, int, int]:
        """Cube shape in array order ``(nv, ny, nx)``."""
        return (self.nv, self.ny, self.nx)

    @property
    def centre_pixel(self) -> tuple[float, float]:
        """0-based pixel coordinates ``(x, y)`` of the centre of a beam-convolved model (``ceil(n / 2)``)."""
        return (float(math.ceil(self.nx / 2)), float(math.ceil(self.ny / 2)))

    @property
    def reference_pixel(self) -> tuple[float, float]:
        """0-based pixel coordinates ``(x, y)`` of the sky reference position."""
        cx, cy = self.centre_pixel
        return (
            cx if self.x_ref is None else float(self.x_ref),
            cy if self.y_ref is None else float(self.y_ref),
        )

    @property
    def velocity_start(self) -> float:
        """Radio velocity (km/s) of channel 0."""
        return -self.dv * self.nv / 2.0 if self.v_start is None else float(self.v_start)

    @property
    def velocities(self) -> np.ndarray:
        """Radio velocity (km/s) of every channel centre."""
        return self.velocity_start + self.dv * np.arange(self.nv)

    @property
    def centre_velocity(self) -> float:
        """Velocity (km/s) at the model's central channel coordinate ``nv / 2``."""
        return self.velocity_start + self.dv * self.nv / 2.0

    @property
    def beam_area_pixels(self) -> float:
        """Area of the Gaussian beam in pixels, ``pi bmaj bmin / (4 ln 2) / cellsize^2``."""
        bmaj, bmin, _ = self.beam
        return math.pi * bmaj * bmin / (4.0 * math.log(2.0)) / self.cellsize**2

    def replace(self, **changes: Any) -> ObsPars:
        """Return a copy with some fields changed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ObsPars(**values)

    # ----------------------------------------------------------------- constructors and I/O
    @classmethod
    def from_tutorial(cls, obspars: dict[str, Any]) -> ObsPars:
        """Build from the seed tutorial's dict: ``xsize, ysize, vsize`` (arcsec, arcsec, km/s), ``cellsize``,
        ``dv`` and ``beamsize`` (scalar or ``[bmaj, bmin, bpa]``)."""
        missing = {"xsize", "ysize", "vsize", "cellsize", "dv", "beamsize"} - set(obspars)
        if missing:
            raise ValueError(f"tutorial obspars lacks {sorted(missing)}")
        cellsize = float(obspars["cellsize"])
        dv = float(obspars["dv"])
        _positive("cellsize", cellsize)
        _positive("dv", dv)
        return cls(
            nx=int(round(float(obspars["xsize"]) / cellsize)),
            ny=int(round(float(obspars["ysize"]) / cellsize)),
            nv=int(round(float(obspars["vsize"]) / dv)),
            cellsize=cellsize,
            dv=dv,
            beam=tuple(np.atleast_1d(np.asarray(obspars["beamsize"], dtype=float)).tolist()),
        )

    def to_tutorial(self) -> dict[str, Any]:
        """The seed tutorial's obspars dict (sizes in arcsec and km/s)."""
        return {
            "xsize": self.nx * self.cellsize,
            "ysize": self.ny * self.cellsize,
            "vsize": self.nv * self.dv,
            "cellsize": self.cellsize,
            "dv": self.dv,
            "beamsize": np.array(self.beam),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of every field."""
        out = asdict(self)
        out["beam"] = list(self.beam)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObsPars:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ObsPars keys {sorted(unknown)}; known keys are {sorted(known)}")
        values = dict(data)
        values["beam"] = tuple(values["beam"])
        return cls(**values)

    def to_json(self, path: str | Path) -> None:
        """Write as JSON (atomically)."""
        from .safe_files import write_json_atomic

        write_json_atomic(path, self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, path: str | Path) -> ObsPars:
        """Read from JSON written by :meth:`to_json`.

        Raises
        ------
        CorruptFileError
            The file is not a JSON object of ObsPars fields (a truncated or foreign file).
        """
        from .errors import CorruptFileError
        from .safe_files import read_json_object

        data = read_json_object(path, remedy="write it again (kinms-core prepare remakes obspars.json)")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{path} does not hold valid obspars ({exc}): write it again") from exc
