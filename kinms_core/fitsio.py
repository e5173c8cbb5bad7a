"""Writing cubes to FITS with a correct sky and radio-velocity WCS."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .obspars import ObsPars
from .safe_files import atomic_path

__all__ = ["obspars_header", "obspars_wcs", "write_cube"]

log = logging.getLogger(__name__)


def obspars_header(obspars: ObsPars) -> fits.Header:
    """FITS header describing a cube on the grid of ``obspars``.

    RA decreases along axis 1, Dec increases along axis 2, axis 3 is radio velocity (VRAD, m/s). Pixel ``i``
    (0-based) of the arrays is FITS pixel ``i + 1``.
    """
    x_ref, y_ref = obspars.reference_pixel
    bmaj, bmin, bpa = obspars.beam
    header = fits.Header()
    header["WCSAXES"] = 3
    header["CTYPE1"] = f"RA---{obspars.projection}"
    header["CTYPE2"] = f"DEC--{obspars.projection}"
    header["CTYPE3"] = "VRAD"
    header["CUNIT1"] = "deg"
    header["CUNIT2"] = "deg"
    header["CUNIT3"] = "m/s"
    header["CRPIX1"] = x_ref + 1.0
    header["CRPIX2"] = y_ref + 1.0
    header["CRPIX3"] = 1.0
    header["CRVAL1"] = obspars.ra
    header["CRVAL2"] = obspars.dec
    header["CRVAL3"] = obspars.velocity_start * 1e3
    header["CDELT1"] = -obspars.cellsize / 3600.0
    header["CDELT2"] = obspars.cellsize / 3600.0
    header["CDELT3"] = obspars.dv * 1e3
    header["RADESYS"] = obspars.radesys
    if obspars.radesys.upper() in ("FK5", "FK4"):
        header["EQUINOX"] = 2000.0 if obspars.radesys.upper() == "FK5" else 1950.0
    header["SPECSYS"] = obspars.specsys
    if obspars.restfreq:
        header["RESTFRQ"] = obspars.restfreq
    header["BMAJ"] = bmaj / 3600.0
    header["BMIN"] = bmin / 3600.0
    header["BPA"] = bpa
    header["BUNIT"] = obspars.bunit
    header["BTYPE"] = "Intensity"
    return header


def obspars_wcs(obspars: ObsPars) -> WCS:
    """The 3-D astropy WCS of :func:`obspars_header`."""
    return WCS(obspars_header(obspars))


def write_cube(
    path: str | Path,
    cube: np.ndarray,
    obspars: ObsPars | None = None,
    *,
    header: fits.Header | None = None,
    history: list[str] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a ``(nv, ny, nx)`` cube as 32-bit FITS.

    Parameters
    ----------
    path
        Output file.
    cube
        Data in array order ``(nv, ny, nx)``.
    obspars
        Grid description used to build the header (ignored for keys already in ``header``).
    header
        A header to use as it is (e.g. the data cube's, so that a model shares its WCS).
    history
        Lines added as HISTORY cards.
    overwrite
        Replace an existing file (atomically: a reader never sees half of it).
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"cube must be 3-D (nv, ny, nx), got shape {cube.shape}")
    if header is None:
        if obspars is None:
            raise ValueError("write_cube needs obspars or a header to describe the cube")
        if obspars.shape != cube.shape:
            raise ValueError(f"cube shape {cube.shape} does not match obspars shape {obspars.shape}")
        header = obspars_header(obspars)
    else:
        header = header.copy()
    for line in history or []:
        header["HISTORY"] = line
    hdu = fits.PrimaryHDU(data=cube.astype(np.float32), header=header)
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True to replace it")
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, output_verify="fix")
    log.debug("wrote %s %s", path, cube.shape)
    return path
