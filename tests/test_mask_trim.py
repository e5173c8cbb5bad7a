"""Noise, signal mask, trimming and the prepared-galaxy files on mock cubes made with the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from ingest_helpers import MockGalaxy, beam_noise, mock_cube, mock_obspars, model_galaxy

from kinms_core import write_cube
from kinms_core.cli import main
from kinms_core.fitsio import obspars_header
from kinms_core.ingest import Cube, read_cube
from kinms_core.noise import NoEmissionError, estimate_rms, signal_mask
from kinms_core.prepare import PREPARED_FILES, load_prepared, prepare_cube
from kinms_core.trim import TrimInfo, axis_window, trim_cube


def as_cube(data: np.ndarray, op) -> Cube:
    header = obspars_header(op)
    return Cube(data=data, obspars=op, velocities=op.velocities, header=header, wcs=WCS(header).celestial)


def is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# ------------------------------------------------------------------------------------------------ noise
def test_estimate_rms_is_robust_to_emission_and_blanks():
    op = mock_obspars(64, 64, 40)
    noise = beam_noise(op, 0.01, np.random.default_rng(1))
    assert estimate_rms(noise) == pytest.approx(0.01, rel=0.03)
    model = model_galaxy(op, MockGalaxy())
    data = noise + model * (0.01 * 30 / model.max())  # peak S/N 30
    data[:, :5, :] = np.nan
    assert estimate_rms(data) == pytest.approx(0.01, rel=0.05)
    assert np.isnan(estimate_rms(np.full((3, 4, 5), np.nan)))


@pytest.mark.parametrize("seed", range(6))
def test_noise_only_cube_raises(seed):
    op = mock_obspars(64, 64, 40)
    data = beam_noise(op, 0.01, np.random.default_rng(100 + seed))
    with pytest.raises(NoEmissionError, match=r"noise\.fits: no emission above 4 sigma \(rms 0\.0\d+ Jy/beam"):
        signal_mask(data, estimate_rms(data), op, source="noise.fits")


def test_constant_cube_raises():
    op = mock_obspars(16, 16, 8)
    with pytest.raises(ValueError, match="no emission can be detected"):
        signal_mask(np.zeros(op.shape), estimate_rms(np.zeros(op.shape)), op)


@pytest.mark.parametrize("snr", [8.0, 30.0])
def test_mask_holds_the_galaxy(snr):
    op = mock_obspars(64, 64, 40)
    gal = MockGalaxy(inc=60, pa=30, scalerad=4.0)
    data, rms = mock_cube(op, gal, snr=snr, seed=3)
    model = model_galaxy(op, gal, seed=3)
    mask = signal_mask(data, estimate_rms(data), op)
    assert mask.dtype == bool and mask.shape == op.shape
    # Most of the flux, and every bright voxel, is detected; the mask is not the whole cube.
    assert model[mask].sum() > (0.85 if snr < 10 else 0.93) * model.sum()
    assert mask[model > 0.3 * model.max()].all()
    assert mask.mean() < 0.25


# ------------------------------------------------------------------------------------------------ trimming
def test_axis_window_rules():
    assert axis_window(40, 50, 100, 8.0) == (30, 62, "pow2")  # 32..58 padded: 27 -> 32, centred
    start, stop, rule = axis_window(10, 80, 100, 8.0)  # 87 needed: 128 > 100 -> 96 = 2^5 3
    assert (stop - start, rule) == (96, "2^a3^b") and start <= 2 and stop >= 89
    assert axis_window(2, 97, 100, 8.0) == (0, 100, "full")  # 100 needed, 96 too small
    assert axis_window(0, 3, 100, 8.0) == (0, 16, "pow2")  # at the edge: shifted inside the axis
    assert axis_window(95, 99, 100, 8.0) == (84, 100, "pow2")
    with pytest.raises(ValueError):
        axis_window(5, 120, 100, 1.0)


def test_trim_compact_galaxy_to_power_of_two():
    """A 100x120x90 cube with a compact galaxy off-centre: power-of-two sky axes holding all the emission."""
    op = mock_obspars(100, 120, 90, dv=10.0)
    gal = MockGalaxy(scalerad=3.0, vflat=150.0, inc=55.0, pa=200.0, xc=-10.0, yc=7.0, vsys=1480.0)
    data, rms = mock_cube(op, gal, snr=15, seed=5)
    model = model_galaxy(op, gal, seed=5)
    cube = as_cube(data, op)
    mask = signal_mask(data, estimate_rms(data), op)
    trimmed, info = trim_cube(cube, mask)
    nv, ny, nx = trimmed.data.shape
    assert is_pow2(nx) and is_pow2(ny) and info.size_rule == "pow2"
    assert nx < 100 and ny < 120 and nv < 90
    assert trimmed.mask.sum() == mask.sum()  # no detected voxel cut
    # All of the emission: the exponential disc's far tail left outside the window holds under 0.01% of the flux and
    # no voxel of it reaches 5% of the noise.
    outside = model.copy()
    outside[info.slices] = 0.0
    assert outside.sum() < 1e-4 * model.sum()
    assert outside.max() < 0.05 * rms
    # At least 2 beams of padding around the detected emission on each sky side (the cube allows it here).
    v0, v1, y0, y1, x0, x1 = info.emission_box
    pad = 2 * op.beam[0] / op.cellsize
    assert info.x0 <= x0 - pad and info.x1 >= x1 + pad and info.y0 <= y0 - pad and info.y1 >= y1 + pad
    assert info.v0 == v0 - 3 and info.v1 == v1 + 3
    json.dumps(info.to_dict())
    assert TrimInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


@pytest.mark.parametrize("seed", range(8))
def test_trimming_never_cuts_detected_emission(seed):
    """Random masks anywhere in cubes of awkward sizes, including at the edges and nearly filling the cube."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(8, 40)), int(rng.integers(20, 90)), int(rng.integers(20, 90)))
    op = mock_obspars(shape[2], shape[1], shape[0], beam=(float(rng.uniform(2, 6)), 2.0, 0.0))
    mask = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        v, y, x = (int(rng.integers(0, n)) for n in shape)
        dv, dy, dx = (int(rng.integers(1, max(2, n // 2))) for n in shape)
        mask[v : v + dv, y : y + dy, x : x + dx] = True
    trimmed, info = trim_cube(as_cube(rng.standard_normal(shape), op), mask, pad_beams=2.0, pad_channels=3)
    assert trimmed.mask.sum() == mask.sum()
    assert trimmed.data.shape == trimmed.obspars.shape == info.shape
    for n, rule in ((info.shape[2], info.size_rule_x), (info.shape[1], info.size_rule_y)):
        if rule == "pow2":
            assert is_pow2(n)
        elif rule == "2^a3^b":
            m = n
            for p in (2, 3):
                while m % p == 0:
                    m //= p
            assert m == 1
        else:
            assert rule == "full"
    assert info.shape[2] == (shape[2] if info.size_rule_x == "full" else info.shape[2])


def test_every_kept_voxel_keeps_its_sky_position_and_velocity():
    op = mock_obspars(100, 120, 90, dv=10.0).replace(x_ref=37.25, y_ref=81.5, ra=210.3, dec=-42.7)
    gal = MockGalaxy(scalerad=3.0, vflat=150.0, inc=55.0, pa=200.0, xc=-10.0, yc=7.0, vsys=1480.0)
    data, _ = mock_cube(op, gal, snr=20, seed=2)
    cube = as_cube(data, op)
    trimmed, info = trim_cube(cube, signal_mask(data, estimate_rms(data), op))
    before, after = WCS(cube.header), WCS(trimmed.header)
    nv, ny, nx = trimmed.data.shape
    vv, yy, xx = (a.ravel() for a in np.meshgrid(np.arange(nv), np.arange(ny), np.arange(nx), indexing="ij"))
    world_after = after.pixel_to_world_values(xx, yy, vv)
    world_before = before.pixel_to_world_values(xx + info.x0, yy + info.y0, vv + info.v0)
    for a, b in zip(world_after[:2], world_before[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)  # degrees: 4 micro-arcsec
    np.testing.assert_allclose(world_after[2], world_before[2], rtol=0, atol=1e-6)  # m/s
    # The celestial WCS carried with the cube, the obspars velocities and the data agree too.
    sky_a = trimmed.wcs.pixel_to_world_values(xx[:50], yy[:50])
    sky_b = cube.wcs.pixel_to_world_values(xx[:50] + info.x0, yy[:50] + info.y0)
    np.testing.assert_allclose(sky_a, sky_b, rtol=0, atol=1e-9)
    np.testing.assert_allclose(trimmed.obspars.velocities, op.velocities[info.v0 : info.v1], atol=1e-9)
    np.testing.assert_allclose(trimmed.velocities, cube.velocities[info.v0 : info.v1])
    np.testing.assert_array_equal(trimmed.data, data[info.slices])
    assert (trimmed.obspars.ra, trimmed.obspars.dec) == (op.ra, op.dec)


# ------------------------------------------------------------------------------------------------ prepared files
def _write_mock(path, *, flip: bool = False):
    op = mock_obspars(100, 120, 90, dv=10.0)
    gal = MockGalaxy(scalerad=3.0, vflat=150.0, inc=55.0, pa=200.0, xc=-10.0, yc=7.0, vsys=1480.0)
    data, rms = mock_cube(op, gal, snr=15, seed=5)
    write_cube(path, data, op)
    return op, gal, rms


def test_prepare_cube_writes_and_reads_back(tmp_path):
    _, gal, rms = _write_mock(tmp_path / "gal.fits")
    summary = prepare_cube(tmp_path / "gal.fits", tmp_path / "out")
    for name in PREPARED_FILES:
        assert (tmp_path / "out" / name).exists()
    on_disk = json.loads((tmp_path / "out" / "prepare.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["input"].endswith("gal.fits") and on_disk["trim"]["size_rule"] == "pow2"
    assert on_disk["rms"] == pytest.approx(rms, rel=0.05)
    prepared = load_prepared(tmp_path / "out")
    assert prepared.data.shape == prepared.mask.shape == prepared.obspars.shape == tuple(on_disk["trim"]["shape"])
    assert prepared.mask.sum() == prepared.n_detected == on_disk["n_detected"] > 0
    assert set(prepared.guesses) == set(prepared.bounds)
    assert prepared.guesses["vsys"] == pytest.approx(gal.vsys, abs=10.0)
    with fits.open(tmp_path / "out" / "mask.fits") as hdul:
        assert hdul[0].data.dtype == np.uint8
    # The written cube reads back through read_cube with the same grid.
    again = read_cube(tmp_path / "out" / "cube.fits")
    assert again.obspars.shape == prepared.obspars.shape
    assert again.obspars.reference_pixel == pytest.approx(prepared.obspars.reference_pixel)
    np.testing.assert_allclose(again.velocities, prepared.obspars.velocities, atol=1e-6)
    assert prepared.cube.mask is prepared.mask
    with pytest.raises(FileNotFoundError, match="kinms-core prepare"):
        load_prepared(tmp_path / "empty")


def test_cli_obspars_and_trim(tmp_path, capsys):
    _write_mock(tmp_path / "gal.fits")
    assert main(["obspars", str(tmp_path / "gal.fits")]) == 0
    out = capsys.readouterr().out
    assert "cellsize    1 arcsec" in out and "noise       rms" in out
    assert main(["obspars", str(tmp_path / "gal.fits"), "--json", "--beam", "5", "4", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["obspars"]["beam"] == [5.0, 4.0, 0.0]
    assert main(["prepare", str(tmp_path / "gal.fits"), "-o", str(tmp_path / "out")]) == 0
    assert "trimmed to" in capsys.readouterr().out
    assert (tmp_path / "out" / "prepare.json").exists()
    assert main(["trim", str(tmp_path / "missing.fits"), "-o", str(tmp_path / "x")]) == 2
