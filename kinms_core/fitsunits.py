"""Unit strings of FITS headers: the legacy spellings of AIPS, GIPSY and Miriad mapped to ones astropy parses.

Older writers put units in upper case ('HZ', 'KM/S', 'DEGREE', 'JY/BEAM'), which astropy's unit parser refuses, so a
cube that wcslib reads fine fails in spectral-cube. :data:`LEGACY_UNITS` is the one table of such spellings;
:func:`canonical_unit` looks a string up in it and :func:`normalise_header_units` applies it to a header in place.
"""

from __future__ import annotations

from astropy.io import fits

__all__ = ["LEGACY_UNITS", "canonical_unit", "normalise_header_units"]

#: Legacy unit spellings (upper case, blanks, ``**`` and ``^`` removed) and the FITS spelling astropy parses. They
#: are matched whatever their case, so each meaning is the one a line cube can have: 'MHZ' is megahertz, 'MJY/BEAM'
#: and 'MK' are milli- (a beam of megajanskys or a megakelvin line does not occur).
LEGACY_UNITS: dict[str, str] = {
    "HZ": "Hz",
    "KHZ": "kHz",
    "MHZ": "MHz",
    "GHZ": "GHz",
    "M/S": "m/s",
    "M/SEC": "m/s",
    "KM/S": "km/s",
    "KM/SEC": "km/s",
    "DEG": "deg",
    "DEGREE": "deg",
    "DEGREES": "deg",
    "JY/BEAM": "Jy/beam",
    "JY/BM": "Jy/beam",
    "JY/BEA": "Jy/beam",
    "JYBEAM-1": "Jy/beam",
    "MJY/BEAM": "mJy/beam",
    "MJY/BM": "mJy/beam",
    "MJYBEAM-1": "mJy/beam",
    "UJY/BEAM": "uJy/beam",
    "UJYBEAM-1": "uJy/beam",
    "K": "K",
    "KELVIN": "K",
    "MK": "mK",
}


def canonical_unit(text: str) -> str:
    """The spelling of ``text`` that astropy parses: its :data:`LEGACY_UNITS` entry, else ``text`` stripped.

    Examples
    --------
    >>> canonical_unit("JY/BEAM ")
    'Jy/beam'
    >>> canonical_unit("km/s")
    'km/s'
    """
    stripped = str(text).strip()
    key = stripped.upper().replace(" ", "").replace("**", "").replace("^", "")
    return LEGACY_UNITS.get(key, stripped)


def normalise_header_units(header: fits.Header) -> dict[str, tuple[str, str]]:
    """Replace legacy spellings of ``CUNITi`` and ``BUNIT`` in ``header`` (in place) by their canonical ones.

    Returns
    -------
    dict
        ``keyword -> (old, new)`` for every card changed (empty when none was).
    """
    keys = [f"CUNIT{i}" for i in range(1, int(header.get("NAXIS", 0)) + 1)] + ["BUNIT"]
    changed: dict[str, tuple[str, str]] = {}
    for key in keys:
        value = header.get(key)
        if not isinstance(value, str):
            continue
        new = canonical_unit(value)
        if new != value.strip():
            header[key] = new
            changed[key] = (value, new)
    return changed
