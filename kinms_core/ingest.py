"""Reading survey spectral-line cubes into the pipeline's conventions.

:func:`read_cube` reads a FITS cube (3-D, or 4-D with a Stokes axis) with spectral-cube, radio-beam and astropy,
and returns a :class:`Cube`: float64 data ``(nv, ny, nx)`` with NaN where blank, oriented so that RA decreases
along x, Dec increases along y and radio velocity increases with channel index; brightness in Jy/beam; and an
:class:`~kinms_core.obspars.ObsPars` describing the grid, the beam and the sky and velocity reference.

What the libraries do for us: astropy's WCS (wcslib) translates AIPS spectral types (``VELO-LSR``, ``FELO-HEL``,
...) to FITS ones (``VELREF``-dependent ``VRAD``/``VOPT``, ``VOPT-F2W``) and reads ``RESTFRQ`` or ``RESTFREQ``;
spectral-cube drops a degenerate Stokes axis wherever it sits, orders the axes ``(spectral, lat, lon)``, reads the
beam from ``BMAJ/BMIN/BPA`` or from an AIPS ``HISTORY ... CLEAN BMAJ=`` card (through radio-beam), reads a CASA
``BEAMS`` table into per-channel beams, and converts the spectral axis to radio velocity; astropy.io.fits applies
``BSCALE/BZERO`` and turns ``BLANK`` integers into NaN; it reads compressed files, recognised by content. What we
add: in-memory repairs of legacy (AIPS, GIPSY, Miriad) headers before the libraries parse them (upper-case unit
strings, placeholder beams, BLANK on float data, Miriad's radio VELO-xxx axes, a rest frequency kept in HISTORY),
the checks (size before reading, axes, beam, rest frequency, data), the flips, the unit conversion and the
bookkeeping in ``obspars.provenance`` (:class:`~kinms_core.obspars.Provenance`).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import math
import re
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

from .constants import C_KMS, C_MS
from .errors import CubeError, MissingInputError, NoBeamError, RestFrequencyError, SettingsError
from .fitsio import obspars_header
from .fitsunits import canonical_unit, normalise_header_units
from .obspars import ObsPars, Provenance, VelocityConvention

__all__ = ["DEFAULT_MAX_VOXELS", "VELOCITY_CONVENTIONS", "Cube", "read_cube"]

log = logging.getLogger(__name__)

#: Largest cube (in voxels, as the header claims) that :func:`read_cube` reads unless told otherwise: 4e8 voxels is
#: 3.2 GB as float64, which with the masking work arrays fits a machine of 8 GB.
DEFAULT_MAX_VOXELS = 400_000_000

#: Readings of a ``VELO-xxx`` spectral axis without VELREF (:func:`read_cube`'s ``velocity_convention``): ``auto``
#: reads a Miriad file's as radio velocity (Miriad writes VELO-xxx for radio, FELO-xxx for optical velocities) and
#: any other as optical (the AIPS convention, which wcslib applies).
VELOCITY_CONVENTIONS = ("auto", "radio", "optical")

# A placeholder rest frequency for velocity axes without one: converting optical or relativistic velocities to
# radio ones does not depend on the rest frequency, but the libraries ask for one.
_PLACEHOLDER_REST_HZ = 1.0e9
_VELOCITY_TYPES = ("VRAD", "VOPT", "VELO", "FELO", "ZOPT", "BETA", "VELR")
# How to give a cube its beam, for the messages of NoBeamError.
_GIVE_BEAM = (
    "give bmaj, bmin, bpa in the sheet (arcsec, arcsec, deg), or --beam BMAJ BMIN BPA on the command line "
    "(beam=(bmaj, bmin, bpa) in Python)"
)
_MIRIAD = re.compile(r"\bmiriad\b", re.IGNORECASE)
# A rest frequency card copied into HISTORY (card syntax, upper-case keyword at the start of the text).
_HISTORY_REST = re.compile(r"^\s*(FREQ0|RESTFREQ|RESTFRQ)\s*=\s*([-+]?[0-9.]+(?:[EeDd][-+]?[0-9]+)?)")
# Every radio line's rest frequency in Hz is far above this; a HISTORY value below it is in other units (GHz).
_MIN_HISTORY_REST_HZ = 1.0e6
# Sky-axis rotations smaller than this (degrees) are ignored.
_ROTATION_TOLERANCE_DEG = 0.1
# Header cards copied from the input to the clean header when present.
_KEPT_CARDS = ("OBJECT", "TELESCOP", "INSTRUME", "OBSERVER", "DATE-OBS", "MJD-OBS", "LINE", "ORIGIN")
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".z")
# First bytes of the compressed files astropy.io.fits opens: it recognises them by content, whatever their name.
_COMPRESSION_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x9d", "compress"),
)
_DECOMPRESSORS = {None: open, "gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
# What reading a damaged file (plain or compressed) raises, besides our own messages.
_UNREADABLE = (OSError, TypeError, ValueError, IndexError, KeyError, EOFError, zlib.error, lzma.LZMAError)


@dataclass
class Cube:
    """A cube read by :func:`read_cube`, in the pipeline's orientation and units.

    Attributes
    ----------
    data : numpy.ndarray
        float64 ``(nv, ny, nx)`` in Jy/beam, NaN where blank.
    obspars : ObsPars
        Grid, beam and the WCS reference of ``data`` (``provenance`` records what was done on reading).
    velocities : numpy.ndarray
        Radio velocity (km/s) of every channel, exactly as the input header gives it (``obspars.velocities`` is
        the linear approximation used by the model; they agree unless the axis is non-linear in radio velocity,
        e.g. a ``VOPT`` axis, see ``obspars.provenance.velocity_nonlinearity_kms``).
    header : astropy.io.fits.Header
        A clean 3-D header of ``data`` (from :func:`~kinms_core.fitsio.obspars_header`).
    wcs : astropy.wcs.WCS
        The 2-D celestial WCS of ``data`` (the input's, flipped with the data; keeps any sky rotation).
    path : pathlib.Path or None
        The file read.
    warnings : list of str
        Things a person should know about the cube (also logged).
    mask : numpy.ndarray or None
        bool ``(nv, ny, nx)`` signal mask, when one goes with the data (set by :func:`~kinms_core.trim.trim_cube`).
    """

    data: np.ndarray
    obspars: ObsPars
    velocities: np.ndarray
    header: fits.Header
    wcs: WCS
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    mask: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nv, ny, nx)``."""
        return tuple(self.data.shape)

    @property
    def name(self) -> str:
        """The file name, for messages."""
        return str(self.path) if self.path is not None else "<cube in memory>"


# --------------------------------------------------------------------------------------------- small helpers
def _warn(notes: list[str], message: str) -> None:
    log.warning("%s", message)
    notes.append(message)


def _quiet_wcs(header: fits.Header) -> WCS:
    """``WCS(header)`` with astropy's fix-up warnings logged at debug level instead of shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wcs = WCS(header)
    for item in caught:
        log.debug("WCS: %s", item.message)
    return wcs


def _image_hdu_index(path: Path, hdul: fits.HDUList) -> int:
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)) and int(hdu.header.get("NAXIS", 0)) > 0:
            return index
    raise CubeError(f"{path} holds no image data (every HDU is empty or a table): give the FITS file of the cube")


def _compression(path: Path) -> str | None:
    """The file's compression as its first bytes tell (``'gzip'``, ...), or None for plain bytes."""
    with open(path, "rb") as stream:
        start = stream.read(8)
    found = next((name for magic, name in _COMPRESSION_MAGIC if start.startswith(magic)), None)
    if (path.suffix.lower() in _COMPRESSED_SUFFIXES) != (found is not None):
        log.info("%s: its content is %s whatever its name says; read as such", path, found or "plain FITS")
    return found


def _primary_header(path: Path, compression: str | None) -> fits.Header | None:
    """The first header, read through the file's decompressor; None if it cannot be read (_open_fits says why)."""
    if compression not in _DECOMPRESSORS:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _DECOMPRESSORS[compression](path, "rb") as stream:
                header = fits.Header.fromfile(stream)
        except (*_UNREADABLE, UnicodeDecodeError):
            header = None
    for item in caught:
        log.debug("%s: %s: %s", path, item.category.__name__, item.message)
    return header


def _open_fits(path: Path, compression: str | None) -> tuple[fits.HDUList, int, fits.Header]:
    """Open lazily (data memory-mapped where possible) and find the image HDU; astropy's warnings go to the log."""
    damaged = f"; {compression}-compressed content, probably cut short or damaged" if compression else ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, mode="denywrite")
        except _UNREADABLE as exc:
            raise CubeError(
                f"{path} is not a readable FITS file ({exc}{damaged}): check that it is a complete FITS cube (copy "
                "or download it again)"
            ) from exc
        try:
            index = _image_hdu_index(path, hdul)
            header = hdul[index].header.copy()
        except CubeError:
            hdul.close()
            raise
        except _UNREADABLE as exc:
            hdul.close()
            raise CubeError(
                f"{path} is not a readable FITS file ({exc}{damaged}): check that it is a complete FITS cube"
            ) from exc
    for item in caught:
        log.debug("%s: %s: %s", path, item.category.__name__, item.message)
    return hdul, index, header


def _axis_lengths(header: fits.Header) -> list[int]:
    return [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)]


def _check_size(path: Path, header: fits.Header, max_voxels: float) -> None:
    lengths = _axis_lengths(header)
    voxels = math.prod(lengths) if lengths else 0
    if voxels > max_voxels:
        shape = " x ".join(str(n) for n in lengths)
        raise CubeError(
            f"{path}: the header declares {shape} = {voxels:.3g} voxels ({voxels * 8 / 1e9:.1f} GB as float64), "
            f"more than the limit of {max_voxels:.3g} voxels: cut the cube down first (e.g. spectral-cube "
            f"subcube or CASA imsubimage), or raise the limit with max_voxels= (--max-voxels on the command line) "
            f"if the machine has the memory"
        )


def _check_truncated(path: Path, hdu: fits.PrimaryHDU | fits.ImageHDU, compression: str | None) -> None:
    """Refuse a file shorter than its header says, before touching the data."""
    if compression is not None:
        # Its size on disk says nothing about the data's; astropy decompresses to the end of the data when it
        # opens the file, so a cut compressed file has already failed in _open_fits.
        return
    lengths = _axis_lengths(hdu.header)
    nbytes = abs(int(hdu.header.get("BITPIX", 8))) // 8 * math.prod(lengths)
    expected = int(hdu.fileinfo()["datLoc"]) + nbytes
    actual = path.stat().st_size
    if actual < expected:
        raise CubeError(
            f"{path} is truncated: the header declares {expected} bytes of header and data but the file has "
            f"{actual}: copy or download the file again"
        )


def _repair_header(
    path: Path, header: fits.Header, velocity_convention: str, restfreq: float | None, notes: list[str]
) -> Provenance:
    """Fix in memory what astropy and spectral-cube cannot read in a legacy header (the file stays as it is); returns
    the original BUNIT and the repairs made."""
    bunit_original = str(header.get("BUNIT", "")).strip()
    units_normalised = _normalise_units(path, header, notes)
    placeholder_beam = _drop_placeholder_beam(path, header)
    ignored_blank = _drop_float_blank(path, header)
    convention = _set_velocity_convention(path, header, velocity_convention, notes)
    restfreq_source = _rest_frequency_from_history(path, header, restfreq is not None, notes)
    return Provenance(
        bunit_original=bunit_original,
        units_normalised=units_normalised,
        placeholder_beam=placeholder_beam,
        ignored_blank=ignored_blank,
        velocity_convention=convention,
        restfreq_source=restfreq_source,
    )


def _normalise_units(path: Path, header: fits.Header, notes: list[str]) -> dict[str, list[str]] | None:
    """Legacy unit spellings (kinms_core.fitsunits) replaced and said; returns them (card -> [old, new]) or None."""
    changed = normalise_header_units(header)
    if not changed:
        return None
    listing = ", ".join(f"{key} '{old}' as '{new}'" for key, (old, new) in changed.items())
    _warn(notes, f"{path}: legacy unit strings (AIPS/GIPSY/Miriad spelling) read as FITS units: {listing}")
    return {key: list(pair) for key, pair in changed.items()}


def _drop_placeholder_beam(path: Path, header: fits.Header) -> dict | None:
    """BMAJ or BMIN that is not a positive number (GIPSY writes -1) means "no beam": drop the cards, so that no
    library makes a beam of them and an AIPS history beam or the caller's beam can take their place; returns the
    dropped cards, or None."""
    values = [header[key] for key in ("BMAJ", "BMIN") if key in header]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values):
        return None
    placeholder = {key: header[key] for key in ("BMAJ", "BMIN", "BPA") if key in header}
    for key in ("BMAJ", "BMIN", "BPA"):
        header.remove(key, ignore_missing=True)
    log.info("%s: placeholder beam %s ignored (no beam)", path, placeholder)
    return placeholder


def _drop_float_blank(path: Path, header: fits.Header) -> int | float | None:
    """BLANK applies to integer data only; on floating-point data (blanks are NaN) astropy ignores it, and so do we,
    saying so: drop it, so that nothing downstream applies it; returns its value, or None."""
    if not (int(header.get("BITPIX", 8)) < 0 and "BLANK" in header):
        return None
    blank = header["BLANK"]
    del header["BLANK"]
    log.info(
        "%s: BLANK = %s on BITPIX %s (floating-point) data is not FITS and is ignored: blank voxels are NaN",
        path,
        blank,
        header["BITPIX"],
    )
    return blank


def _miriad_origin(header: fits.Header) -> str | None:
    """The card that shows the file comes from Miriad (ORIGIN, else the first HISTORY line naming it), or None."""
    origin = str(header.get("ORIGIN", "")).strip()
    if _MIRIAD.search(origin):
        return f"ORIGIN '{origin}'"
    line = next((str(line).strip() for line in header.get("HISTORY", []) if _MIRIAD.search(str(line))), None)
    return f"HISTORY '{line}'" if line is not None else None


def _set_velocity_convention(
    path: Path, header: fits.Header, requested: str, notes: list[str]
) -> VelocityConvention | None:
    """Read a VELO-xxx axis without VELREF as radio (VELREF = 256 in memory) or optical velocity (as wcslib does);
    returns the choice, or None when there was none to make."""
    axis = _spectral_fits_axis(header)
    ctype = str(header.get(f"CTYPE{axis}", "")).strip() if axis else ""
    if not ctype.upper().startswith("VELO-"):
        return None
    if "VELREF" in header:
        if requested != "auto":
            log.info("%s: velocity_convention %s not used: VELREF = %s sets it", path, requested, header["VELREF"])
        return None
    if requested == "auto":
        origin = _miriad_origin(header)
        chosen = "radio" if origin else "optical"
        reason = f"Miriad file ({origin})" if origin else "no Miriad origin in ORIGIN or HISTORY (AIPS convention)"
        other, velref = ("optical", "1 (LSR) or 2 (HEL)") if origin else ("radio", "257 (LSR) or 258 (HEL)")
        _warn(
            notes,
            f"{path}: spectral axis {ctype} without VELREF read as {chosen} velocity: {reason}; if it is {other} "
            f"velocity, give velocity_convention {other} (sheet column, --velocity-convention {other}, "
            f"read_cube(velocity_convention='{other}')) or set VELREF = {velref} in the header",
        )
    else:
        chosen, reason = requested, "given"
        log.info("%s: spectral axis %s without VELREF read as %s velocity, as given", path, ctype, chosen)
    if chosen == "radio":
        # AIPS's radio flag, the frame left to the CTYPE suffix: wcslib then reads the axis as VRAD.
        header["VELREF"] = 256
    return {"convention": chosen, "requested": requested, "reason": reason}


def _check_ignored_blank(path: Path, data: np.ndarray, blank, notes: list[str]) -> None:
    """Voxels equal to an ignored floating-point BLANK may be blanks its writer meant: say so if there are any."""
    count = int(np.count_nonzero(data == float(blank))) if isinstance(blank, (int, float)) else 0
    if count:
        _warn(
            notes,
            f"{path}: {count} voxels equal BLANK = {blank}, which FITS ignores on floating-point data, so they are "
            "read as data: set them to NaN in the file if they are blanks",
        )


def _check_axes(path: Path, header: fits.Header) -> None:
    """Refuse images, spectra and cubes without two celestial axes and one spectral axis (header only)."""
    lengths = _axis_lengths(header)
    naxis = len(lengths)
    if naxis == 1:
        raise CubeError(f"{path} is a 1-D spectrum, not a cube: give a cube with two sky axes and a spectral axis")
    if naxis == 2:
        raise CubeError(
            f"{path} is a 2-D image, not a cube: give a cube with two sky axes and a spectral axis (not a moment map)"
        )
    if naxis > 4:
        raise CubeError(f"{path} has {naxis} axes: give a 3-D cube (or 4-D with a single Stokes axis)")
    ctypes = [str(header.get(f"CTYPE{i}", "")).strip() for i in range(1, naxis + 1)]
    try:
        wcs = _quiet_wcs(header)
    except Exception as exc:  # wcslib raises several unrelated types for bad axis descriptions
        raise CubeError(
            f"{path}: its WCS cannot be read ({exc}); axis types are {ctypes}: fix the CTYPE/CRVAL/CDELT cards"
        ) from exc
    types = [a["coordinate_type"] for a in wcs.get_axis_types()]
    if types.count("celestial") != 2:
        raise CubeError(
            f"{path} has no pair of celestial axes (CTYPEs {ctypes}): the pipeline needs RA---xxx and DEC--xxx "
            "sky axes; fix the header or regrid the cube onto the sky"
        )
    if types.count("spectral") == 0:
        raise CubeError(
            f"{path} has no spectral axis (CTYPEs {ctypes}): the pipeline needs a FREQ, VRAD, VOPT, VELO-xxx or "
            "FELO-xxx axis; fix the CTYPE of the spectral axis"
        )
    if types.count("spectral") > 1:
        raise CubeError(
            f"{path} has {types.count('spectral')} spectral axes (CTYPEs {ctypes}): give a cube with one spectral "
            "axis (drop the degenerate one)"
        )
    lng = wcs.wcs.lng
    if not ctypes[lng].upper().startswith("RA"):
        raise CubeError(
            f"{path} has {ctypes[lng]}/{ctypes[wcs.wcs.lat]} sky axes: the pipeline needs equatorial RA/Dec axes; "
            "reproject the cube to RA/Dec (e.g. with reproject)"
        )
    nchan = lengths[wcs.wcs.spec]
    if nchan < 2:
        raise CubeError(f"{path} has a single channel, so it is an image, not a cube: give the spectral-line cube")
    if naxis == 4:
        other = [i for i, t in enumerate(types) if t not in ("celestial", "spectral")]
        if other and lengths[other[0]] > 1:
            log.warning("%s: axis %s has %d planes; using Stokes I", path, ctypes[other[0]], lengths[other[0]])


def _parse_bunit(path: Path, bunit: str, notes: list[str]) -> tuple[str, float]:
    """The kind of brightness unit (``'jy/beam'`` or ``'K'``) and the factor to Jy/beam or to K."""
    text = bunit.strip()
    if not text:
        _warn(notes, f"{path}: no BUNIT in the header; assuming Jy/beam")
        return "jy/beam", 1.0
    try:
        unit = u.Unit(canonical_unit(text), parse_strict="raise")
    except ValueError:
        unit = None
    if unit is not None:
        if unit.is_equivalent(u.Jy / u.beam):
            return "jy/beam", float(unit.to(u.Jy / u.beam))
        if unit.is_equivalent(u.K):
            return "K", float(unit.to(u.K))
    raise CubeError(
        f"{path} has BUNIT '{text}': the pipeline reads Jy/beam, mJy/beam or K; convert the cube or correct BUNIT"
    )


def _beam_from_args(beam: tuple[float, float, float]):
    from radio_beam import Beam

    values = np.atleast_1d(np.asarray(beam, dtype=float))
    if values.size != 3 or not np.all(np.isfinite(values)) or values[0] <= 0 or values[1] <= 0:
        raise NoBeamError(f"beam override must be (bmaj, bmin, bpa) in arcsec, arcsec, degrees; got {beam!r}")
    bmaj, bmin, bpa = (float(v) for v in values)
    if bmin > bmaj:
        bmaj, bmin, bpa = bmin, bmaj, bpa + 90.0
    return Beam(major=bmaj * u.arcsec, minor=bmin * u.arcsec, pa=bpa * u.deg)


def _tidy(value: float) -> float:
    """Round off the last bits of unit-conversion arithmetic (1/3600 * 3600 = 0.99999999999998)."""
    return float(f"{value:.12g}")


def _beam_tuple(beam) -> tuple[float, float, float]:
    return (
        _tidy(beam.major.to_value(u.arcsec)),
        _tidy(beam.minor.to_value(u.arcsec)),
        _tidy(beam.pa.to_value(u.deg)),
    )


@dataclass
class _BeamChoice:
    """The single beam for the model (a radio_beam Beam), the per-channel beams (or None), where the beam came from
    (``override``, ``beams_table``, ``header`` or ``history``) and the channel beams' spread."""

    beam: object
    channel_beams: list | None
    source: str
    spread: dict | None


def _choose_beam(
    path: Path, spec_cube, header: fits.Header, override, notes: list[str], placeholder: dict | None = None
) -> _BeamChoice:
    """The model's beam: the one given, the median-area channel beam of a BEAMS table, or the header's."""
    from spectral_cube import VaryingResolutionSpectralCube

    channel_beams = None
    if isinstance(spec_cube, VaryingResolutionSpectralCube):
        channel_beams = list(spec_cube.beams)
    if override is not None:
        if placeholder:
            log.info("%s: the given beam replaces the header's placeholder %s", path, placeholder)
        return _BeamChoice(_beam_from_args(override), channel_beams, "override", None)
    if channel_beams is not None:
        areas = np.array([b.sr.value for b in channel_beams])
        good = np.isfinite(areas) & (areas > 0)
        if not good.any():
            raise NoBeamError(f"{path}: its BEAMS table holds no valid beam: {_GIVE_BEAM}")
        order = np.argsort(np.where(good, areas, np.inf))[: int(good.sum())]
        median_beam = channel_beams[int(order[len(order) // 2])]
        majors = np.array([b.major.to_value(u.arcsec) for b, g in zip(channel_beams, good, strict=True) if g])
        minors = np.array([b.minor.to_value(u.arcsec) for b, g in zip(channel_beams, good, strict=True) if g])
        pas = np.array([b.pa.to_value(u.deg) for b, g in zip(channel_beams, good, strict=True) if g])
        spread = {
            "method": "median-area channel beam",
            "n_channels": int(good.sum()),
            "bmaj_min": float(majors.min()),
            "bmaj_max": float(majors.max()),
            "bmin_min": float(minors.min()),
            "bmin_max": float(minors.max()),
            "bpa_min": float(pas.min()),
            "bpa_max": float(pas.max()),
            "area_ratio_max_min": float(areas[good].max() / areas[good].min()),
        }
        if spread["area_ratio_max_min"] > 1.05:
            _warn(
                notes,
                f"{path}: per-channel beams vary by {100 * (spread['area_ratio_max_min'] - 1):.1f}% in area; the "
                f"model uses the median beam {_beam_tuple(median_beam)}",
            )
        return _BeamChoice(median_beam, channel_beams, "beams_table", spread)
    beam = _single_beam(spec_cube)
    if beam is None and placeholder:
        cards = ", ".join(f"{key} = {value}" for key, value in placeholder.items())
        raise NoBeamError(f"{path} has a placeholder beam ({cards}), that is no beam: {_GIVE_BEAM}")
    if beam is None:
        raise NoBeamError(f"{path} has no beam (no BMAJ/BMIN/BPA, AIPS CLEAN history or BEAMS table): {_GIVE_BEAM}")
    return _BeamChoice(beam, None, "header" if "BMAJ" in header else "history", None)


def _single_beam(spec_cube):
    """The cube's one beam (a radio_beam Beam) as spectral-cube read it, or None: no beam, or beams per channel."""
    from spectral_cube.utils import NoBeamError as NoSpectralCubeBeam

    try:
        return spec_cube.beam
    except (NoSpectralCubeBeam, AttributeError):
        return None


def _aips_history_beam(header: fits.Header):
    """An AIPS ``CLEAN BMAJ= ... BMIN= ... BPA= ...`` history beam in any spacing radio-beam does not parse."""
    from radio_beam import Beam

    pattern = re.compile(r"BMAJ\s*=\s*([-+0-9.EeDd]+)\s+BMIN\s*=\s*([-+0-9.EeDd]+)\s+BPA\s*=\s*([-+0-9.EeDd]+)")
    found = None
    for line in header.get("HISTORY", []):
        match = pattern.search(str(line))
        if match:
            found = match
    if found is None:
        return None
    bmaj, bmin, bpa = (float(v.replace("D", "E").replace("d", "e")) for v in found.groups())
    return Beam(major=bmaj * u.deg, minor=bmin * u.deg, pa=bpa * u.deg)


@dataclass
class _SkyGeometry:
    """Whether x and y are flipped to RA decreasing and Dec increasing, the pixel size (arcsec), the reference
    position (deg) and pixel (0-based, after the flips), the projection and the oriented celestial WCS; the x and y
    pixel sizes (arcsec) of non-square pixels, the rotation (deg) of rotated sky axes and their skew, or None."""

    flip_x: bool
    flip_y: bool
    cellsize: float
    ra: float
    dec: float
    x_ref: float
    y_ref: float
    projection: str
    wcs: WCS
    pixel_scales_arcsec: list[float] | None = None
    rotation_deg: float | None = None
    skew_deg: float | None = None


def _celestial_geometry(path: Path, cel: WCS, nx: int, ny: int, notes: list[str]) -> _SkyGeometry:
    """Flips, cellsize, reference and the oriented celestial WCS."""
    matrix = np.array(cel.pixel_scale_matrix, dtype=float)
    flip_x = matrix[0, 0] > 0 if abs(matrix[0, 0]) >= abs(matrix[1, 0]) else matrix[1, 0] < 0
    flip_y = matrix[1, 1] < 0 if abs(matrix[1, 1]) >= abs(matrix[0, 1]) else matrix[0, 1] > 0
    oriented = cel.deepcopy()
    crpix = np.array(cel.wcs.crpix, dtype=float)
    for axis, flip, n in ((0, flip_x, nx), (1, flip_y, ny)):
        if not flip:
            continue
        matrix[:, axis] *= -1.0
        crpix[axis] = n + 1.0 - crpix[axis]
        if oriented.wcs.has_cd():
            cd = np.array(oriented.wcs.cd, dtype=float)
            cd[:, axis] *= -1.0
            oriented.wcs.cd = cd
        else:
            pc = np.array(oriented.wcs.get_pc(), dtype=float)
            pc[:, axis] *= -1.0
            oriented.wcs.pc = pc
    oriented.wcs.crpix = crpix
    oriented.wcs.set()

    cellsize = _tidy(math.sqrt(abs(np.linalg.det(matrix))) * 3600.0)
    scale_x = math.hypot(matrix[0, 0], matrix[1, 0]) * 3600.0
    scale_y = math.hypot(matrix[0, 1], matrix[1, 1]) * 3600.0
    pixel_scales = rotation = skew = None
    if abs(scale_x - scale_y) > 1e-3 * cellsize:
        _warn(
            notes,
            f"{path}: pixels are not square ({scale_x:.4g} x {scale_y:.4g} arcsec); using their geometric mean "
            f"{cellsize:.4g} arcsec: regrid the cube to square pixels for accurate fits",
        )
        pixel_scales = [scale_x, scale_y]
    # Angle of the +y pixel axis from north, through east (east is -x after orientation).
    rot_y = math.degrees(math.atan2(-matrix[0, 1], matrix[1, 1]))
    rot_x = math.degrees(math.atan2(matrix[1, 0], -matrix[0, 0]))
    if max(abs(rot_x), abs(rot_y)) > _ROTATION_TOLERANCE_DEG:
        rotation = rot_y
        if abs(rot_x - rot_y) > _ROTATION_TOLERANCE_DEG:
            skew = rot_x - rot_y
        _warn(
            notes,
            f"{path}: the sky axes are rotated by {rot_y:.2f} deg from north (CROTA/PC/CD); the cube is not "
            "reprojected, so position angles are measured from the +y pixel axis; reproject the cube to a "
            "north-up grid for sky-true position angles",
        )
    lon, lat = (float(v) for v in cel.wcs.crval)
    x_ref, y_ref = float(crpix[0] - 1.0), float(crpix[1] - 1.0)
    projection = cel.wcs.ctype[0][5:].strip("-") or "SIN"
    return _SkyGeometry(
        bool(flip_x),
        bool(flip_y),
        cellsize,
        lon % 360.0,
        lat,
        x_ref,
        y_ref,
        projection,
        oriented,
        pixel_scales_arcsec=pixel_scales,
        rotation_deg=rotation,
        skew_deg=skew,
    )


def _header_rest_frequency(header: fits.Header) -> float | None:
    """Rest frequency (Hz) from RESTFRQ, RESTFREQ or RESTWAV, or None."""
    for key in ("RESTFRQ", "RESTFREQ"):
        value = header.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    value = header.get("RESTWAV")
    if isinstance(value, (int, float)) and value > 0:
        return float(C_MS / value)
    return None


def _rest_frequency_from_history(path: Path, header: fits.Header, restfreq_given: bool, notes: list[str]) -> str | None:
    """Without a rest frequency card, take the last HISTORY ``FREQ0 =``, ``RESTFREQ =`` or ``RESTFRQ =`` card (Miriad
    keeps the input header's there) as the header's, in memory; returns ``"HISTORY <card>"`` when it did, or None."""
    if _header_rest_frequency(header) is not None:
        return None
    matches = [m for m in (_HISTORY_REST.match(str(line)) for line in header.get("HISTORY", [])) if m]
    if not matches:
        return None
    key, text = matches[-1].groups()
    value = float(text.replace("D", "E").replace("d", "e"))
    if not (math.isfinite(value) and value > _MIN_HISTORY_REST_HZ):
        log.info("%s: HISTORY %s = %s is not a rest frequency in Hz; not used", path, key, text)
        return None
    header["RESTFRQ"] = value
    message = (
        f"{path}: no RESTFRQ/RESTFREQ card; the rest frequency {value:.12g} Hz is taken from a HISTORY {key} card "
        "(it sets the K to Jy/beam conversion and the velocities of a FREQ axis): give restfreq (Hz) in the sheet "
        "or --restfreq if the line's is another"
    )
    if restfreq_given:
        log.info("%s (the given restfreq is used instead)", message)
    else:
        _warn(notes, message)
    return f"HISTORY {key}"


def _is_velocity_axis(header: fits.Header) -> bool:
    axis = _spectral_fits_axis(header)
    return axis > 0 and str(header.get(f"CTYPE{axis}", "")).upper()[:4] in _VELOCITY_TYPES


def _velocities(path: Path, spec_cube, conversion_rest_hz: float | None) -> tuple:
    """Radio velocities (km/s) per channel, the velocity-converted cube and the sky frequencies (Hz) if known."""
    axis = spec_cube.spectral_axis
    frequency_like = axis.unit.physical_type in ("frequency", "length", "energy", "wavenumber")
    if frequency_like and conversion_rest_hz is None:
        raise RestFrequencyError(
            f"{path} has a {spec_cube.wcs.wcs.ctype[2]} spectral axis but no rest frequency (no RESTFRQ or "
            "RESTFREQ in the header): give restfreq (Hz) in the sheet"
        )
    try:
        converted = spec_cube.with_spectral_unit(
            u.km / u.s, velocity_convention="radio", rest_value=conversion_rest_hz * u.Hz
        )
    except Exception as exc:
        raise CubeError(
            f"{path}: its spectral axis ({spec_cube.wcs.wcs.ctype[2]}, {axis.unit}) cannot be converted to radio "
            f"velocity ({exc}): fix CTYPE/CUNIT of the spectral axis"
        ) from exc
    # wcslib computes radio velocities through frequency, which leaves the last bits off the header's numbers.
    velocities = np.array([_tidy(v) for v in converted.spectral_axis.to_value(u.km / u.s)], dtype=float)
    frequencies = np.asarray(axis.to_value(u.Hz, equivalencies=u.spectral()), dtype=float) if frequency_like else None
    diffs = np.diff(velocities)
    if not (np.all(np.isfinite(velocities)) and (np.all(diffs > 0) or np.all(diffs < 0))):
        raise CubeError(
            f"{path}: its channel velocities are not finite and monotonic: fix CRVAL/CDELT of the spectral axis"
        )
    return velocities, converted, frequencies


def _linear_axis(velocities: np.ndarray) -> tuple[float, float, float]:
    """``(v_start, dv, max deviation)`` of the least-squares straight line through ascending velocities."""
    channels = np.arange(velocities.size, dtype=float)
    dv, v_start = np.polyfit(channels, velocities, 1)
    deviation = float(np.max(np.abs(v_start + dv * channels - velocities)))
    if deviation < 1e-9 * max(1.0, float(np.max(np.abs(velocities)))):
        # Exactly linear: keep channel 0 exact rather than the fit's rounding.
        dv = float((velocities[-1] - velocities[0]) / (velocities.size - 1))
        v_start = float(velocities[0])
        deviation = 0.0
    return float(v_start), float(dv), deviation


# --------------------------------------------------------------------------------------------- the reader
def read_cube(
    path: str | Path,
    *,
    restfreq: float | None = None,
    beam: tuple[float, float, float] | None = None,
    max_voxels: float = DEFAULT_MAX_VOXELS,
    velocity_convention: str = "auto",
) -> Cube:
    """Read a FITS spectral-line cube into the pipeline's orientation and units.

    Parameters
    ----------
    path
        FITS file: a 3-D cube, or 4-D with a degenerate Stokes axis (3rd or 4th). Spectral axis FREQ (with
        RESTFRQ/RESTFREQ or ``restfreq``), VRAD, VOPT, VELO-xxx or FELO-xxx, in any unit and direction.
    restfreq
        Rest frequency in Hz; overrides the header's.
    beam
        ``(bmaj, bmin, bpa)`` in arcsec, arcsec, degrees; overrides the header's (BMAJ/BMIN/BPA, AIPS CLEAN
        history or a CASA BEAMS table).
    max_voxels
        Refuse a cube whose header declares more voxels than this, before reading its data (default
        :data:`DEFAULT_MAX_VOXELS`, 4e8).
    velocity_convention
        How to read a ``VELO-xxx`` spectral axis without VELREF: ``"radio"``, ``"optical"`` or ``"auto"`` (radio
        for a Miriad file, optical otherwise, with a warning); see :data:`VELOCITY_CONVENTIONS`. The choice is
        recorded in ``obspars.provenance.velocity_convention``.

    Returns
    -------
    Cube
        Data in Jy/beam, float64 ``(nv, ny, nx)``, RA decreasing along x, Dec increasing along y, radio velocity
        increasing with channel; ``obspars.provenance`` (:class:`~kinms_core.obspars.Provenance`) records the file,
        the original unit, the flips, the beam's source and spread, a sky rotation, a non-linear velocity axis and
        the header repairs (``units_normalised``, ``placeholder_beam``, ``ignored_blank``, ``velocity_convention``,
        ``restfreq_source``).

    Raises
    ------
    MissingInputError
        The file does not exist (a :class:`FileNotFoundError`).
    NoBeamError
        The cube has no beam and none is given, or the given one is malformed.
    RestFrequencyError
        A frequency axis, or a cube in K, has no rest frequency, or the given one is not a positive frequency.
    SettingsError
        ``velocity_convention`` is not one of :data:`VELOCITY_CONVENTIONS`.
    CubeError
        The file is not FITS or is truncated; it is too large; it is not a cube (2-D image, 1-D spectrum, no sky or
        spectral axes); its unit is not Jy/beam, mJy/beam or K; its data are all blank.

    Every error is a :class:`ValueError` (:mod:`kinms_core.errors`) whose message names the file and the fix.
    """
    path = Path(path)
    _check_request(path, velocity_convention)
    notes: list[str] = []
    compression = _compression(path)
    hdul, index = _open_within_size(path, compression, max_voxels)
    with hdul:
        header, rest_hz, conversion_rest, repairs = _checked_header(
            path, hdul[index], compression, velocity_convention, restfreq, notes
        )
        spec_cube = _spectral_cube(path, hdul, index, header)
        beams = _choose_beam(path, spec_cube, header, beam, notes, repairs.placeholder_beam)
        spectral = _spectral_axis(path, spec_cube, header, conversion_rest, rest_hz)
        nv, ny, nx = spec_cube.shape
        sky = _celestial_geometry(path, spec_cube.wcs.celestial, nx, ny, notes)
        kind, scale = _parse_bunit(path, str(header.get("BUNIT", "")), notes)
        data = _oriented_data(path, spec_cube, spectral.flipped, sky.flip_y, sky.flip_x)
    channel_beams = _ascending_velocity(spectral, beams.channel_beams)
    _check_blanks(path, data, repairs.ignored_blank, notes)
    per_channel = channel_beams if (channel_beams is not None and beam is None) else [beams.beam] * nv
    unit_scale = _to_jy_per_beam(path, data, kind, scale, spectral.frequencies, per_channel)
    provenance = replace(
        repairs,
        source_file=str(path),
        beam_source=beams.source,
        beam_spread=beams.spread,
        spectral_ctype=spectral.ctype,
        pixel_scales_arcsec=sky.pixel_scales_arcsec,
        sky_rotation_deg=sky.rotation_deg,
        sky_skew_deg=sky.skew_deg,
        flipped={"x": bool(sky.flip_x), "y": bool(sky.flip_y), "v": spectral.flipped},
        unit_scale=unit_scale,
    )
    obspars = _obspars(path, data.shape, sky, spectral, _beam_tuple(beams.beam), header, notes, provenance)
    clean = obspars_header(obspars)
    for key in _KEPT_CARDS:
        if key in header:
            clean[key] = header[key]
    clean["HISTORY"] = f"kinms_core.ingest: read from {path.name}"
    _log_read(path, obspars, beams.source)
    return Cube(
        data=data,
        obspars=obspars,
        velocities=spectral.velocities,
        header=clean,
        wcs=sky.wcs,
        path=path,
        warnings=notes,
    )


def _check_request(path: Path, velocity_convention: str) -> None:
    if velocity_convention not in VELOCITY_CONVENTIONS:
        raise SettingsError(f"velocity_convention must be one of {VELOCITY_CONVENTIONS}, got {velocity_convention!r}")
    if not path.exists():
        raise MissingInputError(f"{path}: no such file: check the cube's path in the galaxies sheet")
    if path.is_dir():
        raise CubeError(f"{path} is a directory (a CASA image?): export it to FITS first (CASA exportfits)")


def _open_within_size(path: Path, compression: str | None, max_voxels: float) -> tuple[fits.HDUList, int]:
    """The opened file and its cube's HDU; a header that claims an enormous cube is refused before anything (even a
    memory map) is made for its data."""
    primary = _primary_header(path, compression)
    if primary is not None and int(primary.get("NAXIS", 0)) > 0:
        _check_size(path, primary, max_voxels)
    hdul, index, header = _open_fits(path, compression)
    try:
        _check_size(path, header, max_voxels)
    except CubeError:
        hdul.close()
        raise
    return hdul, index


def _checked_header(
    path: Path,
    hdu: fits.PrimaryHDU | fits.ImageHDU,
    compression: str | None,
    velocity_convention: str,
    restfreq: float | None,
    notes: list[str],
) -> tuple[fits.Header, float | None, float | None, Provenance]:
    """The repaired header (a copy; the HDU's own is repaired too, for spectral-cube), after the checks of its axes
    and of the file's length; the rest frequency (given, else the header's), the one that converts the spectral
    axis to radio velocity, and the header's repairs (:func:`_repair_header`)."""
    repairs = _repair_header(path, hdu.header, velocity_convention, restfreq, notes)
    header = hdu.header.copy()
    _check_axes(path, header)
    _check_truncated(path, hdu, compression)
    if restfreq is not None and not (np.isfinite(restfreq) and restfreq > 0):
        raise RestFrequencyError(f"restfreq must be a positive frequency in Hz, got {restfreq!r}")
    header_rest = _header_rest_frequency(header)
    rest_hz = float(restfreq) if restfreq is not None else header_rest
    if not _is_velocity_axis(header):
        return header, rest_hz, rest_hz, repairs
    # Velocities stay as the header gives them: convert with the header's rest frequency (re-referencing them to
    # another one would change them); without one, any value converts optical to radio velocity alike, but
    # spectral-cube only converts when the WCS holds one, so give it one (in memory only).
    conversion_rest = header_rest or rest_hz or _PLACEHOLDER_REST_HZ
    if header_rest is None:
        hdu.header["RESTFRQ"] = conversion_rest
    if restfreq is not None and header_rest is not None and abs(restfreq - header_rest) > 1e-9 * header_rest:
        log.info("%s: velocity axis kept as the header gives it (rest frequency %.9g Hz)", path, header_rest)
    return header, rest_hz, conversion_rest, repairs


def _spectral_cube(path: Path, hdul: fits.HDUList, index: int, header: fits.Header):
    """The HDU as a spectral-cube cube, with a beam from AIPS CLEAN history written in any spacing."""
    from spectral_cube import SpectralCube

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spec_cube = SpectralCube.read(hdul, hdu=index)
        except Exception as exc:  # spectral-cube and wcslib raise many types for malformed cubes
            raise CubeError(f"{path}: spectral-cube cannot read it as a cube ({exc}): check its axes") from exc
        if _single_beam(spec_cube) is None and "BMAJ" not in header:
            # radio-beam parses only the exact AIPS spacing; try a tolerant pattern before giving up.
            history_beam = _aips_history_beam(header)
            if history_beam is not None:
                spec_cube = spec_cube.with_beam(history_beam, raise_error_jybm=False)
    for item in caught:
        log.debug("%s: %s: %s", path, item.category.__name__, item.message)
    return spec_cube


@dataclass
class _SpectralAxis:
    """Radio velocities (km/s) per channel in the file's order, sky frequencies (Hz) if known, the rest frequency,
    the axis' CTYPE and frame, and whether velocity falls with channel."""

    velocities: np.ndarray
    frequencies: np.ndarray | None
    rest_hz: float | None
    ctype: str
    specsys: str
    flipped: bool


def _spectral_axis(
    path: Path, spec_cube, header: fits.Header, conversion_rest: float | None, rest_hz: float | None
) -> _SpectralAxis:
    velocities, converted, frequencies = _velocities(path, spec_cube, conversion_rest)
    if frequencies is None and rest_hz is not None:
        frequencies = rest_hz * (1.0 - velocities / C_KMS)
    axis = _spectral_fits_axis(header)
    ctype_in = str(header.get(f"CTYPE{axis}", "")).strip() if axis else ""
    specsys = (converted.wcs.wcs.specsys or str(header.get("SPECSYS", ""))).strip() or "UNKNOWN"
    return _SpectralAxis(
        velocities=velocities,
        frequencies=frequencies,
        rest_hz=rest_hz,
        ctype=ctype_in or str(spec_cube.wcs.wcs.ctype[2]).strip(),
        specsys=specsys,
        flipped=bool(velocities[-1] < velocities[0]),
    )


def _oriented_data(path: Path, spec_cube, flip_v: bool, flip_y: bool, flip_x: bool) -> np.ndarray:
    """The data as one float64 copy, flipped on the way to the pipeline's orientation."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = spec_cube.unmasked_data[:]
        raw = getattr(raw, "value", raw)
        view = raw[:: -1 if flip_v else 1, :: -1 if flip_y else 1, :: -1 if flip_x else 1]
        try:
            data = np.array(view, dtype=np.float64)
        except (OSError, ValueError, TypeError) as exc:
            raise CubeError(f"{path}: its data cannot be read ({exc}): copy or download the file again") from exc
        del raw, view
    for item in caught:
        log.debug("%s: %s: %s", path, item.category.__name__, item.message)
    return data


def _ascending_velocity(spectral: _SpectralAxis, channel_beams: list | None) -> list | None:
    """Velocities and frequencies (in place) and the channel beams in the order of the flipped data."""
    if not spectral.flipped:
        return channel_beams
    spectral.velocities = spectral.velocities[::-1].copy()
    if spectral.frequencies is not None:
        spectral.frequencies = spectral.frequencies[::-1].copy()
    return channel_beams[::-1] if channel_beams is not None else None


def _check_blanks(path: Path, data: np.ndarray, ignored_blank: int | float | None, notes: list[str]) -> None:
    """Refuse an all-blank cube; every non-finite voxel becomes NaN; report voxels equal to an ignored BLANK."""
    finite = np.isfinite(data)
    if not finite.any():
        raise CubeError(f"{path}: every voxel is blank (NaN or BLANK): check that it is the right file")
    if not finite.all():
        data[~finite] = np.nan
    del finite
    if ignored_blank is not None:
        _check_ignored_blank(path, data, ignored_blank, notes)


def _to_jy_per_beam(
    path: Path, data: np.ndarray, kind: str, scale: float, frequencies: np.ndarray | None, beams: list
) -> float:
    """Convert the data to Jy/beam in place (K through each channel's beam and frequency); returns the factor at
    the central channel."""
    nv = data.shape[0]
    if kind == "K":
        if frequencies is None:
            raise RestFrequencyError(
                f"{path} is in K but has no rest frequency to convert to Jy/beam: give restfreq (Hz) in the sheet"
            )
        jy_to_k = np.array([b.jtok(f * u.Hz).to_value(u.K) for b, f in zip(beams, frequencies, strict=True)])
        factors = scale / jy_to_k
        data *= factors[:, None, None]
        log.info("%s: converted K to Jy/beam (%.4g Jy/beam per K at the central channel)", path, factors[nv // 2])
        return float(factors[nv // 2])
    if scale != 1.0:
        data *= scale
        return scale
    return 1.0


def _obspars(
    path: Path,
    shape: tuple[int, int, int],
    sky: _SkyGeometry,
    spectral: _SpectralAxis,
    beam: tuple[float, float, float],
    header: fits.Header,
    notes: list[str],
    provenance: Provenance,
) -> ObsPars:
    """The cube's ObsPars, with warnings about a non-linear velocity axis, a topocentric frame and a beam that
    spans under a pixel or over half the field; ``provenance`` gains the velocity axis' non-linearity if any."""
    nv, ny, nx = shape
    v_start, dv, nonlinearity = _linear_axis(spectral.velocities)
    if nonlinearity > 0:
        provenance = replace(provenance, velocity_nonlinearity_kms=nonlinearity)
        if nonlinearity > 0.1 * dv:
            _warn(
                notes,
                f"{path}: the spectral axis is not linear in radio velocity (up to {nonlinearity:.3g} km/s off a "
                f"straight line, {nonlinearity / dv:.2f} channels); the model uses the straight line: regrid to "
                "radio velocity for exact channel velocities",
            )
    if spectral.specsys.upper().startswith("TOPO"):
        _warn(
            notes,
            f"{path}: the spectral frame is topocentric (SPECSYS {spectral.specsys}); velocities are not corrected "
            "to LSRK or barycentric, so the systemic velocity may be off by up to 30 km/s",
        )
    beam_pixels = beam[0] / sky.cellsize
    if beam_pixels < 1.0 or beam_pixels > min(nx, ny) / 2:
        _warn(
            notes,
            f"{path}: the beam ({beam[0]:.3g} arcsec) spans {beam_pixels:.3g} pixels of {sky.cellsize:.3g} arcsec: "
            "check the beam (BMAJ is in degrees in FITS, the sheet's bmaj in arcsec)",
        )
    return ObsPars(
        nx=nx,
        ny=ny,
        nv=nv,
        cellsize=sky.cellsize,
        dv=dv,
        beam=beam,
        ra=sky.ra,
        dec=sky.dec,
        x_ref=sky.x_ref,
        y_ref=sky.y_ref,
        v_start=v_start,
        restfreq=spectral.rest_hz,
        specsys=spectral.specsys,
        radesys=(sky.wcs.wcs.radesys or str(header.get("RADESYS", "")) or "ICRS").strip(),
        projection=sky.projection,
        bunit="Jy/beam",
        provenance=provenance,
    )


def _log_read(path: Path, obspars: ObsPars, beam_source: str) -> None:
    provenance = obspars.provenance
    log.info(
        "%s: %d x %d x %d, cell %.4g arcsec, dv %.4g km/s, beam %.3g x %.3g arcsec pa %.1f (%s), %s -> Jy/beam%s",
        path,
        obspars.nx,
        obspars.ny,
        obspars.nv,
        obspars.cellsize,
        obspars.dv,
        *obspars.beam,
        beam_source,
        provenance.bunit_original or "no BUNIT",
        "".join(f", flipped {k}" for k, v in provenance.flipped.items() if v),
    )


def _spectral_fits_axis(header: fits.Header) -> int:
    """1-based FITS number of the spectral axis (the first axis whose CTYPE looks spectral), or 0."""
    for i in range(1, int(header.get("NAXIS", 0)) + 1):
        ctype = str(header.get(f"CTYPE{i}", "")).upper()
        if ctype[:4] in ("FREQ", "VRAD", "VOPT", "VELO", "FELO", "WAVE", "AWAV", "ZOPT", "BETA", "ENER", "WAVN"):
            return i
    return 0
