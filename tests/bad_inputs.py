"""Bad inputs for the survey robustness tests: one file (or sheet row) per way a survey can go wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from kinms_core import ObsPars, write_cube

GRID = ObsPars(nx=32, ny=32, nv=16, cellsize=2.0, dv=25.0, beam=(6.0, 6.0, 0.0), ra=40.0, dec=5.0, v_start=900.0)


def _header(**changes: object) -> fits.Header:
    from kinms_core import obspars_header

    header = obspars_header(GRID)
    for key, value in changes.items():
        if value is None:
            del header[key]
        else:
            header[key] = value
    return header


def write_bad_inputs(folder: Path) -> dict[str, tuple[str, str]]:
    """Write the bad cubes into ``folder``; returns ``{galaxy: (cube path, words expected in the error)}``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=GRID.shape).astype(np.float32) * 1e-3
    cases: dict[str, tuple[str, str]] = {}

    good = folder / "good_for_truncation.fits"
    write_cube(good, noise, GRID)
    truncated = folder / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[: 2880 + 5000])
    cases["truncated"] = (str(truncated), "truncated")

    not_fits = folder / "not_fits.fits"
    not_fits.write_text("SIMPLE? no: this is a text file that someone named .fits\n")
    cases["not_fits"] = (str(not_fits), "not a readable FITS file")

    image = folder / "image2d.fits"
    fits.PrimaryHDU(noise[0], header=fits.Header({"BMAJ": 1e-3, "BMIN": 1e-3, "BPA": 0})).writeto(image)
    cases["image_2d"] = (str(image), "2-D")

    all_nan = folder / "all_nan.fits"
    fits.PrimaryHDU(np.full(GRID.shape, np.nan, dtype=np.float32), header=_header()).writeto(all_nan)
    cases["all_nan"] = (str(all_nan), "NaN")

    no_beam = folder / "no_beam.fits"
    fits.PrimaryHDU(noise, header=_header(BMAJ=None, BMIN=None, BPA=None)).writeto(no_beam)
    cases["no_beam"] = (str(no_beam), "bmaj, bmin, bpa")

    freq = folder / "freq_no_restfreq.fits"
    header = _header(CTYPE3="FREQ", CUNIT3="Hz", CRVAL3=230.0e9, CDELT3=-1.9e7, SPECSYS="LSRK")
    fits.PrimaryHDU(noise, header=header).writeto(freq)
    cases["freq_no_restfreq"] = (str(freq), "restfreq")

    pure_noise = folder / "pure_noise.fits"
    write_cube(pure_noise, noise, GRID)
    cases["pure_noise"] = (str(pure_noise), "no emission")

    cases["missing_file"] = (str(folder / "does_not_exist.fits"), "does_not_exist.fits")

    non_celestial = folder / "non_celestial.fits"
    header = _header(CTYPE1="GLON-CAR", CTYPE2="GLAT-CAR", CRVAL1=120.0, CRVAL2=0.0)
    header["CTYPE1"], header["CTYPE2"] = "OFFSET", "OFFSET"
    fits.PrimaryHDU(noise, header=header).writeto(non_celestial)
    cases["non_celestial"] = (str(non_celestial), "celestial")

    # A header that claims a 60000 x 60000 x 4000 cube over a few kB of data: refused from the header alone.
    enormous = folder / "enormous.fits"
    header = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 3)])
    header["NAXIS1"], header["NAXIS2"], header["NAXIS3"] = 60000, 60000, 4000
    header.extend(_header())
    enormous.write_bytes(header.tostring().encode() + b"\0" * 2880)
    cases["enormous"] = (str(enormous), "voxels")

    # A galaxy with one voxel at 1e30 (an old blank sentinel): without a check it is "detected" and fitted.
    galaxy = galaxy_cube()
    sentinel = folder / "sentinel.fits"
    with_sentinel = galaxy + noise
    with_sentinel[8, 10, 12] = 1e30
    write_cube(sentinel, with_sentinel, GRID)
    cases["sentinel_1e30"] = (str(sentinel), "sentinel")

    # The same galaxy with its continuum left in: every voxel lifted by 20 times the noise is "detected".
    continuum = folder / "continuum.fits"
    write_cube(continuum, galaxy + noise + 0.02, GRID)
    cases["continuum"] = (str(continuum), "continuum")
    return cases


def galaxy_cube() -> np.ndarray:
    """A small disc on :data:`GRID` (no noise): exponential, arctan rotation curve, inclined 60 degrees."""
    from kinms_core import model_cube

    rad = np.arange(0.0, 40.0, 0.5)
    return model_cube(
        GRID,
        n_clouds=2**14,
        seed=1,
        inc=60.0,
        pa=120.0,
        sb_rad=rad,
        sb_prof=np.exp(-rad / 6.0),
        vel_rad=rad,
        vel_prof=180.0 * 2.0 / np.pi * np.arctan(rad / 3.0),
        int_flux=20.0,
    ).astype(np.float32)
