"""First guesses and data-derived bounds on mock cubes made with the model.

Tolerances (the issue's): PA within 20 degrees, inclination within 15 degrees, systemic velocity within one channel,
centre within one beam, flux within 20%, vflat within 25%.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.wcs import WCS
from ingest_helpers import MockGalaxy, mock_cube, mock_obspars

from kinms_core import write_cube
from kinms_core.fitsio import obspars_header
from kinms_core.guesses import GUESS_KEYS, data_bounds, first_guesses
from kinms_core.ingest import Cube, read_cube
from kinms_core.noise import estimate_rms, signal_mask

CASES = {
    # name: (grid keywords, galaxy, peak S/N)
    "pa0_inc60": ({}, MockGalaxy(pa=0.0, inc=60.0), 30.0),
    "pa75_inc45_offset": ({}, MockGalaxy(pa=75.0, inc=45.0, xc=4.0, yc=-3.0, vsys=1540.0, flux=20.0), 10.0),
    "pa160_inc75": ({}, MockGalaxy(pa=160.0, inc=75.0, xc=-6.0, yc=5.0, vsys=1460.0, vflat=150.0), 15.0),
    "pa250_inc35": ({}, MockGalaxy(pa=250.0, inc=35.0, xc=2.0, yc=6.0, vsys=1520.0, vflat=240.0), 30.0),
    "pa330_inc55_faint": ({}, MockGalaxy(pa=330.0, inc=55.0, xc=-3.0, yc=-4.0, vsys=1480.0, sigma=6.0), 8.0),
    "pa110_inc80_fine_channels": (
        {"nv": 64, "dv": 10.0},
        MockGalaxy(pa=110.0, inc=80.0, xc=5.0, vflat=120.0, rturn=1.0, scalerad=4.0, sigma=8.0),
        20.0,
    ),
    "pa200_inc65_small_pixels": (
        {"cellsize": 0.5, "beam": (2.0, 1.5, 70.0)},
        MockGalaxy(pa=200.0, inc=65.0, xc=1.5, yc=-2.0, scalerad=2.5, rturn=1.0, vsys=1510.0),
        12.0,
    ),
}


def check(guesses: dict, gal: MockGalaxy, op, *, x_off: float = 0.0, y_off: float = 0.0) -> None:
    """Guesses within the issue's tolerances of the truth (centre relative to the reference pixel)."""
    assert tuple(guesses) == GUESS_KEYS
    assert all(type(v) is float and math.isfinite(v) for v in guesses.values())
    dpa = (guesses["pa"] - gal.pa + 180.0) % 360.0 - 180.0
    assert abs(dpa) < 20.0, guesses
    assert abs(guesses["inc"] - gal.inc) < 15.0, guesses
    assert abs(guesses["vsys"] - gal.vsys) < op.dv, guesses
    centre_error = math.hypot(guesses["xc"] - (gal.xc + x_off), guesses["yc"] - (gal.yc + y_off))
    assert centre_error < op.beam[0], guesses
    assert guesses["flux"] == pytest.approx(gal.flux, rel=0.2)
    assert guesses["vflat"] == pytest.approx(gal.vflat, rel=0.25)
    assert 0.3 * gal.scalerad < guesses["scalerad"] < 3.0 * gal.scalerad
    assert guesses["rturn"] > 0 and guesses["sigma"] > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_guesses_on_mock_cubes(name):
    grid, gal, snr = CASES[name]
    op = mock_obspars(**grid)
    data, _ = mock_cube(op, gal, snr=snr, seed=sum(map(ord, name)))
    header = obspars_header(op)
    cube = Cube(data=data, obspars=op, velocities=op.velocities, header=header, wcs=WCS(header).celestial)
    rms = estimate_rms(data)
    guesses = first_guesses(cube, signal_mask(data, rms, op), rms)
    check(guesses, gal, op)
    bounds = data_bounds(cube, guesses)
    assert tuple(bounds) == tuple(sorted(bounds, key=GUESS_KEYS.index))
    for key, (lo, hi) in bounds.items():
        assert lo <= guesses[key] <= hi, (key, lo, guesses[key], hi)
        assert type(lo) is float and type(hi) is float
    assert bounds["inc"] == (5.0, 89.0)
    assert bounds["pa"][1] - bounds["pa"][0] == 360.0
    assert bounds["vsys"] == (op.velocities[0], op.velocities[-1])
    assert bounds["flux"] == pytest.approx((0.1 * guesses["flux"], 10 * guesses["flux"]))
    assert bounds["sigma"][1] <= 100.0


def test_guesses_survive_flipped_axes_on_disk(tmp_path):
    """A cube written with RA increasing along x and velocity descending: read_cube re-orients it, so the PA
    (KinMS convention, on the sky) and the centre come out as for the model."""
    op = mock_obspars(64, 64, 40)
    gal = MockGalaxy(pa=300.0, inc=60.0, xc=5.0, yc=-4.0, vsys=1530.0)
    data, _ = mock_cube(op, gal, snr=20.0, seed=4)
    header = obspars_header(op)
    x_ref, _ = op.reference_pixel
    header["CDELT1"] = -header["CDELT1"]  # RA now increases with x ...
    header["CRPIX1"] = op.nx - x_ref  # ... and the reference pixel moves with the flip
    header["CRVAL3"] = op.velocities[-1] * 1e3  # channel 0 is now the highest velocity
    header["CDELT3"] = -op.dv * 1e3
    write_cube(tmp_path / "flipped.fits", data[::-1, :, ::-1], header=header)
    cube = read_cube(tmp_path / "flipped.fits")
    assert cube.obspars.provenance.flipped == {"x": True, "y": False, "v": True}
    np.testing.assert_allclose(cube.data, data.astype(np.float32), rtol=1e-6)
    rms = estimate_rms(cube.data)
    check(first_guesses(cube, signal_mask(cube.data, rms, cube.obspars), rms), gal, op)


def test_bad_inputs():
    op = mock_obspars(16, 16, 8)
    header = obspars_header(op)
    cube = Cube(data=np.zeros(op.shape), obspars=op, velocities=op.velocities, header=header, wcs=None)
    with pytest.raises(ValueError, match="no positive emission"):
        first_guesses(cube, np.ones(op.shape, bool), 1.0)
    with pytest.raises(ValueError, match="mask shape"):
        first_guesses(cube, np.ones((2, 2, 2), bool), 1.0)
    with pytest.raises(ValueError, match="guesses lack"):
        data_bounds(cube, {"flux": 1.0})


@pytest.mark.parametrize("pa", [120.0, 300.0, 15.0])
def test_point_symmetric_pa_of_a_velocity_map_is_the_disc_s(pa):
    from kinms_core import ObsPars
    from kinms_core.moments import moment1, point_symmetric_pa
    from kinms_core.parametric import GalaxyModel, ModelSpec

    op = ObsPars(nx=48, ny=48, nv=30, cellsize=1.0, dv=15.0, beam=(3.0, 3.0, 0.0))
    values = {"flux": 30.0, "pa": pa, "inc": 55.0, "xc": 3.0, "yc": -2.0, "vsys": 0.0, "sigma": 10.0}
    values |= {"scalerad": 6.0, "vflat": 180.0, "rturn": 3.0}
    cube = GalaxyModel(op, ModelSpec(), n_clouds=2**15, seed=1).cube(values)
    velocity = moment1(cube, op.velocities, cube > 0.05 * cube.max())
    cx, cy = op.centre_pixel
    found = point_symmetric_pa(velocity, (cx + 3.0, cy - 2.0), 0.0)
    assert abs((found - pa + 180.0) % 360.0 - 180.0) <= 1.0


def test_mask_extent_is_the_farthest_masked_pixel_from_the_centre_in_arcsec():
    from kinms_core.moments import mask_extent

    mask = np.zeros((4, 20, 30), bool)
    mask[1, 10, 5] = True  # 3 pixels left of the centre
    mask[2, 14, 12] = True  # (4, 4) pixels away: the farthest
    assert mask_extent(mask, 2.0, (8.0, 10.0)) == pytest.approx(2.0 * np.hypot(4.0, 4.0))
    assert mask_extent(np.zeros((4, 20, 30), bool), 2.0, (8.0, 10.0)) == 0.0
