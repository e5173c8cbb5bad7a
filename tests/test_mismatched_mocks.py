"""The mismatched-mock generator (benchmarks/mismatched_mocks.py): its truth means what kinms_core's parameters mean,
its sets span the ranges and features asked for, its files read back right, and its real noise holds no emission."""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import itertools
import json
import math
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits

from kinms_core import model_cube
from kinms_core.ingest import read_cube

pytest.importorskip("kinms")

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "mismatched_mocks.py"
_SPEC = importlib.util.spec_from_file_location("mismatched_mocks", _PATH)
mm = importlib.util.module_from_spec(_SPEC)
sys.modules["mismatched_mocks"] = mm
_SPEC.loader.exec_module(mm)

pytestmark = [
    pytest.mark.kinms,
    pytest.mark.filterwarnings("ignore::UserWarning"),  # read_cube's notes on the observed cubes' headers
    pytest.mark.skipif(
        not all((mm.real_data_root() / f).is_dir() for f in mm.REAL_SOURCES),
        reason="the observed cubes of ../shared/real are not here",
    ),
]

SEED = 1
N_SET = 120


@pytest.fixture(scope="module")
def designs() -> list:
    return [mm.draw_design(i, SEED) for i in range(N_SET)]


def _kinms_core_cube(spec, n_clouds: int = 2**19) -> np.ndarray:
    """kinms_core's model of a null mock's truth, mapped as kinms_core.simulate maps a mock row."""
    op, t = spec.obspars, spec.truth
    cx, cy = op.centre_pixel
    x_ref, y_ref = op.reference_pixel
    r = np.arange(0.0, 0.5 * math.hypot(op.nx, op.ny) * op.cellsize + math.hypot(t["xc"], t["yc"]), op.cellsize / 3)
    return model_cube(
        op,
        inc=t["inc"],
        pa=t["pa"],
        sb_rad=r,
        sb_prof=np.exp(-r / t["scalerad"]),
        vel_rad=r,
        vel_prof=t["vflat"] * 2.0 / np.pi * np.arctan(r / t["rturn"]),
        int_flux=t["flux"],
        gas_sigma=t["sigma"],
        phase_cent=(t["xc"] + (x_ref - cx) * op.cellsize, t["yc"] + (y_ref - cy) * op.cellsize),
        v_offset=t["vsys"] - op.centre_velocity,
        n_clouds=n_clouds,
        seed=5,
    )


def _rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("odd", [False, True], ids=["as_drawn", "odd_axes_beam_off_axis"])
def test_null_mock_is_kinms_core_model_of_its_truth(designs, odd):
    spec = next(s for s in designs if not s.features)
    spec = dataclasses.replace(spec, n_clouds=2**19, truth={**spec.truth, "flux": 10.0})
    if odd:
        # Odd axes (centre at ceil(n/2)) and an elliptical beam off the axes (KinMS's own beam is mirrored there).
        spec = dataclasses.replace(
            spec, nx=spec.nx | 1, ny=(spec.ny + 1) | 1, beam=(spec.beam[0], 0.6 * spec.beam[0], 33.0)
        )
    ours = mm.noiseless_cube(spec)
    reference = _kinms_core_cube(spec)
    assert _rel_l2(ours, reference) < 0.03
    # The comparison can see a convention error: half a pixel of centre is several times the tolerance.
    shifted = dataclasses.replace(spec, truth={**spec.truth, "xc": spec.truth["xc"] + 0.5 * spec.cellsize})
    assert _rel_l2(ours, _kinms_core_cube(shifted)) > 0.06


def test_draw_design_is_deterministic(designs):
    def text(spec) -> str:
        return json.dumps(spec.to_dict(), sort_keys=True)  # NaN (the flux scale not yet drawn) equals itself here

    for index in (0, 1, 3, 7):
        assert text(mm.draw_design(index, SEED)) == text(designs[index])
    assert text(mm.draw_design(1, SEED + 1)) != text(designs[1])


def test_set_holds_every_feature_nulls_and_real_noise(designs):
    counts = collections.Counter(f for s in designs for f in s.features)
    assert set(counts) == set(mm.FEATURES)
    assert all(len(set(s.features) & set(mm.SURFACE_FEATURES)) <= 1 for s in designs)
    assert all(len(s.features) <= 3 for s in designs)
    nulls = [s for s in designs if not s.features]
    assert len(nulls) == N_SET // 10 and all(s.noise == "correlated" for s in nulls)
    real = collections.Counter(s.cutout["folder"] for s in designs if s.is_real_noise)
    assert sum(real.values()) == N_SET // 4 and set(real) == set(mm.REAL_SOURCES)
    assert all(s.noise.startswith(f"real:{s.cutout['folder']}") for s in designs if s.is_real_noise)


def test_set_spans_the_ranges(designs):
    def values(key, subset=designs):
        return np.array([s.truth[key] for s in subset])

    unwarped = [s for s in designs if "warp" not in s.features]
    steady = [s for s in designs if "sigma_gradient" not in s.features]
    synthetic = [s for s in designs if not s.is_real_noise]
    assert 20.0 <= values("inc", unwarped).min() < 30.0 and 75.0 < values("inc", unwarped).max() <= 85.0
    assert values("pa").min() < 30.0 and values("pa").max() > 330.0
    assert 80.0 <= values("vflat").min() < 100.0 and 280.0 < values("vflat").max() <= 300.0
    assert 5.0 <= values("sigma", steady).min() < 7.0 and 18.0 < values("sigma", steady).max() <= 20.0
    beams = np.array([math.sqrt(s.beam[0] * s.beam[1]) for s in designs])
    rturn = values("rturn") / beams
    assert 0.5 <= rturn.min() < 0.7 and 2.7 < rturn.max() <= 3.0
    snr = np.array([s.snr for s in designs])
    assert 5.0 <= snr.min() < 6.0 and 40.0 < snr.max() <= 50.0
    assert np.all(np.hypot(values("xc"), values("yc")) <= np.array([s.beam[0] for s in designs]))
    for s in designs:
        assert 32 <= s.nx <= 64 and 32 <= s.ny <= 64 and 20 <= s.nv <= 40
        assert abs(s.truth["vsys"] - s.obspars.centre_velocity) <= 2.5 * s.dv
        assert set(mm.TRUTH_PARAMETERS) - {"scalerad"} <= set(s.truth)
    for s in synthetic:
        assert 5.0 <= s.dv <= 20.0
        assert 3.0 <= s.beam[0] / s.cellsize <= 5.0
        assert 3.0 <= s.extras["r_emission_beams"] <= 8.0
    # The band holds the line's conservative half-width and a few line-free channels on each side.
    for s in designs:
        half_band = s.nv * s.dv / 2.0 - abs(s.truth["vsys"] - s.obspars.centre_velocity)
        assert half_band >= s.extras["line_half_width"] + 3 * s.dv


def test_written_mock_reads_back_with_its_grid_truth_and_noise(tmp_path):
    spec = mm.draw_spec(1, SEED, n_clouds=2**18)
    assert not spec.is_real_noise
    path = mm.write_mock(spec, tmp_path / f"{spec.name}.fits")
    cube = read_cube(path)
    op, want = cube.obspars, spec.obspars
    assert cube.data.shape == (spec.nv, spec.ny, spec.nx)
    assert op.cellsize == pytest.approx(spec.cellsize, rel=1e-6) and op.dv == pytest.approx(spec.dv, rel=1e-6)
    assert op.beam == pytest.approx(spec.beam, abs=1e-4)
    assert op.reference_pixel == want.centre_pixel
    np.testing.assert_allclose(cube.velocities, want.velocities, atol=1e-3)
    history = [str(card) for card in fits.getheader(path)["HISTORY"]]
    for name, value in spec.truth.items():
        line = next(h for h in history if h.startswith(f"true {name} = "))
        assert float(line.split("=")[1]) == pytest.approx(value, rel=1e-12)
    clean = mm.noiseless_cube(spec)
    assert clean.max() / spec.rms == pytest.approx(spec.snr, rel=1e-9)
    assert clean.sum() * spec.dv / mm._psf(spec).sum() == pytest.approx(spec.truth["flux"], rel=1e-9)
    # Line-free: below a thousandth of the peak (at S/N 50, a twentieth of the noise).
    line_free = clean.max(axis=(1, 2)) < 1e-3 * clean.max()
    assert line_free[:3].all() and line_free[-3:].all()
    assert np.std(cube.data[line_free]) == pytest.approx(spec.rms, rel=0.1)


def test_real_noise_cutouts_hold_no_emission_and_no_nan_in_the_galaxy(designs):
    for folder in mm.REAL_SOURCES:
        for spec in [s for s in designs if s.is_real_noise and s.cutout["folder"] == folder][:2]:
            spec = dataclasses.replace(spec, n_clouds=2**17, truth={**spec.truth, "flux": 1.0})
            cut, real = spec.cutout, mm._real_noise(folder)
            n, y0, x0 = cut["side"], cut["y0"], cut["x0"]
            assert not real.binned_emission(cut["bin"])[cut["channels"], y0 : y0 + n, x0 : x0 + n].any()
            noise = mm.noise_cube(spec)
            assert noise.shape == (spec.nv, spec.ny, spec.nx)
            assert mm.noise_is_clean(mm.noise_symmetry(noise, spec.obspars))
            galaxy = mm.noiseless_cube(spec).sum(axis=0)
            region = galaxy > 1e-3 * galaxy.max()
            assert np.isfinite(noise[:, region]).all()
            assert spec.rms == pytest.approx(np.nanstd(noise))


@pytest.mark.parametrize("turn", list(itertools.product([False, True], repeat=3)), ids=str)
def test_turned_noise_has_the_turned_beam(turn):
    cutout = dict(zip(("transpose", "mirror", "rotate180"), turn, strict=True), reverse_channels=False)
    beam = (6.0, 3.5, 25.0)
    grid = SimpleNamespace(beam=beam, cellsize=1.0, nx=32, ny=32)
    turned_psf = mm.turn_square(mm._psf(grid)[np.newaxis], cutout)[0]
    grid.beam = mm.turn_beam(beam, cutout)
    np.testing.assert_allclose(turned_psf, mm._psf(grid), atol=1e-12)


def test_emission_check_refuses_a_box_on_the_galaxy():
    real = mm._real_noise("ngc4324_co_carma")
    y, x = np.argwhere(real.emission.any(axis=0)).mean(axis=0).astype(int)
    box = real.data[:, y - 16 : y + 16, x - 16 : x + 16]
    grid = real.obspars.replace(nx=32, ny=32, x_ref=None, y_ref=None)
    assert not mm.noise_is_clean(mm.noise_symmetry(box, grid))
    # ... and accepts beam-correlated Gaussian noise.
    noise = mm.beam_correlated_noise(grid, 1.0, np.random.default_rng(0))
    assert mm.noise_is_clean(mm.noise_symmetry(noise, grid))


def test_truth_table_has_a_row_per_mock_and_truth_columns(designs):
    table = mm.truth_table(designs[:12])
    assert list(table["name"]) == [s.name for s in designs[:12]]
    for name in mm.TRUTH_PARAMETERS:
        assert f"{name}_true" in table.columns
    null = next(i for i, s in enumerate(designs[:12]) if not s.features)
    assert table.loc[null, "features"] == "none" and table.loc[null, "pa_true"] == designs[null].truth["pa"]
    assert table["has_ring"].sum() == sum("ring" in s.features for s in designs[:12])
    assert {f"has_{f}" for f in mm.FEATURES} <= set(table.columns)


def test_kinms_is_imported_without_silencing_warnings():
    before = list(warnings.filters)
    mm._kinms()
    assert warnings.filters == before
