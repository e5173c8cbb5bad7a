"""Observational parameters of a cube: grid, channel width, beam and the WCS reference.

Pixel and channel conventions (KinMS's): pixel ``i`` has its centre at coordinate ``i``. ``phase_cent=(0, 0)`` and
``v_offset=0`` put the galaxy at 0-based channel coordinate ``nv / 2`` and, in the beam-convolved cube, at pixel
coordinate ``ceil(n / 2)`` on each sky axis: ``n / 2`` on an even axis; on an odd axis the cloudlets are binned about
``n / 2`` (a pixel edge) and KinMS's beam, centred at ``n / 2`` too, moves them half a pixel on, to ``(n + 1) / 2``.
The sky axes run with RA decreasing along x (east to the left) and Dec increasing along y; channel velocity increases
with channel index (``dv > 0``).

:class:`Provenance` records what reading (:func:`kinms_core.ingest.read_cube`) and trimming
(:func:`kinms_core.trim.trim_cube`) did to the cube; in JSON it is the ``extra`` object of the ObsPars.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

__all__ = ["BeamSpread", "Flips", "ObsPars", "Provenance", "VelocityConvention"]

log = logging.getLogger(__name__)

#: The key under which :meth:`ObsPars.to_dict` writes the :class:`Provenance` (its name in obspars.json and
#: prepare.json since the first version).
PROVENANCE_KEY = "extra"


def _positive(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


class Flips(TypedDict):
    """Which axes :func:`~kinms_core.ingest.read_cube` reversed: ``x`` (RA increased along x), ``y`` (Dec decreased
    along y), ``v`` (velocity fell with channel)."""

    x: bool
    y: bool
    v: bool


class VelocityConvention(TypedDict):
    """How a ``VELO-xxx`` axis without VELREF was read: ``convention`` (``radio`` or ``optical``), ``requested`` (the
    ``velocity_convention`` asked for: ``auto``, ``radio`` or ``optical``) and ``reason`` (why, in words)."""

    convention: str
    requested: str
    reason: str


class BeamSpread(TypedDict):
    """The spread of a CASA BEAMS table's channel beams: ``method`` (how the model's beam was chosen),
    ``n_channels`` (valid channel beams), ``bmaj_min``, ``bmaj_max``, ``bmin_min``, ``bmin_max`` (arcsec),
    ``bpa_min``, ``bpa_max`` (deg) and ``area_ratio_max_min`` (largest over smallest beam area)."""

    method: str
    n_channels: int
    bmaj_min: float
    bmaj_max: float
    bmin_min: float
    bmin_max: float
    bpa_min: float
    bpa_max: float
    area_ratio_max_min: float


@dataclass(frozen=True)
class Provenance:
    """What reading and trimming did to a cube: where its numbers came from and what was repaired.

    Every field is ``None`` when not recorded: an ObsPars made in Python records nothing, and
    :func:`~kinms_core.ingest.read_cube` records the optional ones (repairs, rotations, ...) only when they
    happened. In JSON (:meth:`ObsPars.to_dict`) it is the ``extra`` object, holding the recorded fields only.

    Attributes
    ----------
    source_file : str or None
        The FITS file read (``read_cube``).
    bunit_original : str or None
        The header's BUNIT as written, stripped (``""`` when absent), before any unit repair (``read_cube``).
    units_normalised : dict of str to [str, str], or None
        Legacy unit strings read as FITS units: header card -> ``[as written, as read]`` (``read_cube``; only when
        some were).
    placeholder_beam : dict of str to header value, or None
        The BMAJ, BMIN and BPA cards (header units, degrees) of a placeholder beam (not a positive number, as GIPSY's
        -1) that was ignored (``read_cube``; only then).
    ignored_blank : int, float or None
        The BLANK of floating-point data, ignored as FITS says (``read_cube``; only when the header had one).
    velocity_convention : VelocityConvention or None
        How a ``VELO-xxx`` axis without VELREF was read (``read_cube``; only for such an axis).
    restfreq_source : str or None
        ``"HISTORY <card>"`` when the rest frequency came from a HISTORY card (``read_cube``; only then).
    beam_source : str or None
        Where the beam came from: ``override``, ``beams_table``, ``header`` or ``history`` (``read_cube``).
    beam_spread : BeamSpread or None
        The spread of the channel beams of a CASA BEAMS table (``read_cube``; only when the beam came from one).
    spectral_ctype : str or None
        The spectral axis' CTYPE as written (``read_cube``).
    pixel_scales_arcsec : list of float or None
        ``[x, y]`` pixel sizes (arcsec) of non-square pixels, whose geometric mean is ``cellsize`` (``read_cube``;
        only for non-square pixels).
    sky_rotation_deg : float or None
        Angle (deg, north through east) of the +y pixel axis from north, when the sky axes are rotated by more
        than 0.1 deg (``read_cube``; the cube is not reprojected).
    sky_skew_deg : float or None
        Rotation of the x axis minus that of the y axis (deg), when they differ by more than 0.1 deg
        (``read_cube``; only with ``sky_rotation_deg``).
    flipped : Flips or None
        Which axes were reversed to the pipeline's orientation (``read_cube``).
    unit_scale : float or None
        Factor that took the data to Jy/beam (1.0 for Jy/beam; for K, the factor at the central channel)
        (``read_cube``).
    velocity_nonlinearity_kms : float or None
        Largest distance (km/s) of the channel velocities from the straight line of ``v_start`` and ``dv``
        (``read_cube``; only when above 0).
    trim_offset : list of int or None
        ``[v0, y0, x0]``: the trimmed cube's first channel and pixel in the cube it was cut from
        (:func:`~kinms_core.trim.trim_cube`).
    trim_original_shape : list of int or None
        ``[nv, ny, nx]`` of the cube it was cut from (:func:`~kinms_core.trim.trim_cube`).
    """

    source_file: str | None = None
    bunit_original: str | None = None
    units_normalised: dict[str, list[str]] | None = None
    placeholder_beam: dict[str, Any] | None = None
    ignored_blank: int | float | None = None
    velocity_convention: VelocityConvention | None = None
    restfreq_source: str | None = None
    beam_source: str | None = None
    beam_spread: BeamSpread | None = None
    spectral_ctype: str | None = None
    pixel_scales_arcsec: list[float] | None = None
    sky_rotation_deg: float | None = None
    sky_skew_deg: float | None = None
    flipped: Flips | None = None
    unit_scale: float | None = None
    velocity_nonlinearity_kms: float | None = None
    trim_offset: list[int] | None = None
    trim_original_shape: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of the recorded fields (copies), in the order the stages record them."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        """Inverse of :meth:`to_dict`. Unknown keys (from another version) are dropped, with a debug message.

        Raises
        ------
        TypeError
            ``data`` is not a mapping.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"the ObsPars {PROVENANCE_KEY!r} entry must be a JSON object, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            log.debug("ObsPars %r entries %s are not known and are dropped", PROVENANCE_KEY, unknown)
        return cls(**{key: value for key, value in data.items() if key in known})


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
    provenance : Provenance
        What reading and trimming did to the cube (not compared by ``==``); ``extra`` in JSON.
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
    provenance: Provenance = field(default_factory=Provenance, compare=False)

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
        """Plain-JSON dictionary of every field, the provenance under ``extra`` (its recorded fields only)."""
        out = asdict(self)
        del out["provenance"]
        out["beam"] = list(self.beam)
        out[PROVENANCE_KEY] = self.provenance.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObsPars:
        """Inverse of :meth:`to_dict`; unknown keys are an error, but not unknown entries of ``extra`` (see
        :meth:`Provenance.from_dict`)."""
        known = {f.name for f in fields(cls) if f.name != "provenance"} | {PROVENANCE_KEY}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ObsPars keys {sorted(unknown)}; known keys are {sorted(known)}")
        values = dict(data)
        values["beam"] = tuple(values["beam"])
        if PROVENANCE_KEY in values:
            values["provenance"] = Provenance.from_dict(values.pop(PROVENANCE_KEY))
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
