"""Mock galaxies and FITS headers for the ingest, mask/trim and guesses tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from scipy import ndimage

from kinms_core import ObsPars, model_cube

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass
class MockGalaxy:
    """True parameters of a mock disc (KinMS conventions; xc, yc in arcsec from the cube centre nx/2, ny/2)."""

    flux: float = 30.0
    pa: float = 45.0
    inc: float = 60.0
    vflat: float = 200.0
    rturn: float = 2.0
    scalerad: float = 5.0
    sigma: float = 10.0
    xc: float = 0.0
    yc: float = 0.0
    vsys: float = 1500.0


def mock_obspars(
    nx: int = 64,
    ny: int = 64,
    nv: int = 40,
    *,
    cellsize: float = 1.0,
    dv: float = 20.0,
    beam: tuple[float, float, float] = (4.0, 3.0, 20.0),
    v_centre: float = 1500.0,
    ra: float = 150.0,
    dec: float = 30.0,
) -> ObsPars:
    """A grid whose central channel coordinate nv/2 is at ``v_centre`` and whose sky reference is the centre."""
    return ObsPars(
        nx=nx,
        ny=ny,
        nv=nv,
        cellsize=cellsize,
        dv=dv,
        beam=beam,
        ra=ra,
        dec=dec,
        x_ref=nx / 2.0,
        y_ref=ny / 2.0,
        v_start=v_centre - dv * nv / 2.0,
        restfreq=1.420405751e9,
    )


def model_galaxy(op: ObsPars, gal: MockGalaxy, *, n_clouds: int = 2**15, seed: int = 0) -> np.ndarray:
    """Noiseless model cube (Jy/beam) of an exponential disc with an arctan rotation curve."""
    rmax = 1.5 * math.hypot(op.nx, op.ny) * op.cellsize
    rad = np.linspace(0.0, rmax, 400)
    return model_cube(
        op,
        inc=gal.inc,
        pa=gal.pa,
        sb_rad=rad,
        sb_prof=np.exp(-rad / gal.scalerad),
        vel_rad=rad,
        vel_prof=gal.vflat * 2.0 / np.pi * np.arctan(rad / gal.rturn),
        int_flux=gal.flux,
        gas_sigma=gal.sigma,
        phase_cent=(gal.xc, gal.yc),
        v_offset=gal.vsys - op.centre_velocity,
        n_clouds=n_clouds,
        seed=seed,
    )


def beam_noise(op: ObsPars, rms: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of standard deviation ``rms`` whose spatial correlation is the (circularised) beam, as in
    interferometric cubes: white noise smoothed by a Gaussian of the beam's sigma over sqrt(2)."""
    noise = rng.standard_normal(op.shape)
    sigma = math.sqrt(op.beam[0] * op.beam[1]) * FWHM_TO_SIGMA / op.cellsize / math.sqrt(2.0)
    noise = ndimage.gaussian_filter(noise, (0.0, sigma, sigma), mode="wrap")
    return noise * (rms / noise.std())


def mock_cube(
    op: ObsPars, gal: MockGalaxy, *, snr: float | None = 20.0, seed: int = 0, n_clouds: int = 2**15
) -> tuple[np.ndarray, float]:
    """Model plus beam-correlated noise whose rms is the model's peak over ``snr``; returns (cube, rms)."""
    cube = model_galaxy(op, gal, n_clouds=n_clouds, seed=seed)
    if snr is None:
        return cube, 0.0
    rms = float(cube.max()) / snr
    return cube + beam_noise(op, rms, np.random.default_rng(seed + 1)), rms


def sky_header(
    nx: int,
    ny: int,
    *,
    cdelt: float = 1.0 / 3600.0,
    crpix: tuple[float, float] = (5.0, 6.0),
    crval: tuple[float, float] = (150.0, 30.0),
) -> fits.Header:
    """A header with RA---SIN/DEC--SIN axes 1 and 2 (RA decreasing with x)."""
    header = fits.Header()
    header["CTYPE1"] = "RA---SIN"
    header["CRVAL1"] = crval[0]
    header["CDELT1"] = -cdelt
    header["CRPIX1"] = crpix[0]
    header["CUNIT1"] = "deg"
    header["CTYPE2"] = "DEC--SIN"
    header["CRVAL2"] = crval[1]
    header["CDELT2"] = cdelt
    header["CRPIX2"] = crpix[1]
    header["CUNIT2"] = "deg"
    return header
