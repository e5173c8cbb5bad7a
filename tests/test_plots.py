"""Tests of the diagnostic and survey figures and of the KinMS_plotter adapter."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from kinms_core import ObsPars, model_cube
from kinms_core.beam import gaussian_psf
from kinms_core.compat.plotter import KinMS_plotter
from kinms_core.moments import pv_diagram
from kinms_core.plots import (
    DIAGNOSTICS_FIGSIZE,
    DIAGNOSTICS_FIGSIZE_NO_MODEL,
    DPI,
    beam_ellipse,
    display_mask,
    plot_diagnostics,
)
from kinms_core.posterior_plots import plot_corner, plot_traces
from kinms_core.survey_plots import plot_distributions, plot_pulls, plot_recovery, pulls

OBSPARS = ObsPars(nx=32, ny=32, nv=20, cellsize=1.0, dv=20.0, beam=(4.0, 3.0, 30.0))
RAD = np.arange(0.0, 24.0, 0.5)
DISC = dict(
    inc=60.0,
    sb_rad=RAD,
    sb_prof=np.exp(-RAD / 4.0),
    vel_rad=RAD,
    vel_prof=150.0 * 2.0 / np.pi * np.arctan(RAD / 1.5),
    int_flux=10.0,
    gas_sigma=10.0,
    n_clouds=2**13,
)


@pytest.fixture(scope="module")
def cubes() -> tuple[np.ndarray, np.ndarray]:
    """Noisy 'data' at PA 90 and a model at PA 100, shape (nv, ny, nx)."""
    truth = model_cube(OBSPARS, pa=90.0, seed=1, **DISC)
    model = model_cube(OBSPARS, pa=100.0, seed=2, **DISC)
    data = truth + np.random.default_rng(0).normal(0.0, 0.05 * truth.max(), truth.shape)
    data[0, :3, :3] = np.nan
    return data, model


def _read(path: Path) -> np.ndarray:
    assert path.exists() and path.stat().st_size > 0
    return mpimg.imread(path)


def _size(figsize: tuple[float, float]) -> tuple[int, int]:
    return round(figsize[1] * DPI), round(figsize[0] * DPI)


# ------------------------------------------------------------------------------------------ diagnostics
def test_plot_diagnostics_writes_png_of_expected_size(cubes, tmp_path):
    data, model = cubes
    out = plot_diagnostics(
        data,
        model,
        OBSPARS,
        pa=100.0,
        centre=OBSPARS.centre_pixel,
        galaxy="MOCK",
        path=tmp_path / "sub" / "diag.png",
        rms=0.05 * np.nanmax(data),
        vsys=0.0,
    )
    image = _read(out)
    assert image.shape[:2] == _size(DIAGNOSTICS_FIGSIZE)
    assert np.ptp(image[..., :3]) > 0.5  # not blank


def test_plot_diagnostics_without_model_and_with_mask(cubes, tmp_path):
    data, _ = cubes
    mask = np.zeros(data.shape, dtype=bool)
    mask[:, 8:24, 8:24] = True
    out = plot_diagnostics(
        data, None, OBSPARS, pa=90.0, centre=(16.0, 16.0), galaxy="", path=tmp_path / "d.png", mask=mask
    )
    assert _read(out).shape[:2] == _size(DIAGNOSTICS_FIGSIZE_NO_MODEL)


def test_plot_diagnostics_rejects_mismatched_model(cubes, tmp_path):
    data, model = cubes
    with pytest.raises(ValueError, match="model has shape"):
        plot_diagnostics(data, model[:-1], OBSPARS, pa=0.0, centre=(16, 16), galaxy="x", path=tmp_path / "x.png")


def test_signal_mask_keeps_emission_and_drops_noise(cubes):
    data, _ = cubes
    rms = 0.05 * np.nanmax(data)
    noise = np.random.default_rng(3).normal(0.0, rms, data.shape)
    mask, used = display_mask(noise, OBSPARS, rms)
    assert used == pytest.approx(rms)
    assert mask.mean() < 1e-3
    mask, _ = display_mask(data, OBSPARS, rms)
    bright = np.nan_to_num(data) > 10 * rms
    assert mask[bright].mean() > 0.99
    assert not mask[np.isnan(data)].any()


# ------------------------------------------------------------------------------------------ beam ellipse
@pytest.mark.parametrize(
    ("bpa", "sky_angle", "pixel_angle"), [(0.0, 90.0, 90.0), (45.0, 45.0, 135.0), (90.0, 0.0, 180.0)]
)
def test_beam_ellipse_angles(bpa, sky_angle, pixel_angle):
    sky = beam_ellipse((4.0, 2.0, bpa))
    assert (sky.width, sky.height, sky.angle) == pytest.approx((4.0, 2.0, sky_angle))
    pix = beam_ellipse((4.0, 2.0, bpa), cellsize=0.5)
    assert (pix.width, pix.height, pix.angle) == pytest.approx((8.0, 4.0, pixel_angle))


def _display_major_axis(ellipse, ax) -> np.ndarray:
    """Unit vector (right, up) on screen along the major axis, pointing up."""
    ax.add_patch(ellipse)
    phi = np.linspace(0.0, 2.0 * np.pi, 721)
    vertices = ellipse.get_transform().transform(np.column_stack([np.cos(phi), np.sin(phi)]))  # display coords
    centre = vertices.mean(axis=0)
    far = vertices[np.argmax(np.hypot(*(vertices - centre).T))] - centre
    far = far if far[1] >= 0 else -far
    return far / np.hypot(*far)


@pytest.mark.parametrize(
    ("bpa", "expected"),
    [(0.0, (0.0, 1.0)), (45.0, (-math.sqrt(0.5), math.sqrt(0.5))), (135.0, (math.sqrt(0.5), math.sqrt(0.5)))],
)
def test_beam_ellipse_points_north_east_on_screen(bpa, expected):
    """bpa 45 points to the upper left (north-east) in both a dRA (east left) and a pixel (x right) frame."""
    fig = Figure(figsize=(4, 4))
    ax_sky, ax_pix = fig.subplots(1, 2)
    for ax in (ax_sky, ax_pix):
        ax.set_aspect("equal")
    ax_sky.set_xlim(10, -10)  # dRA increases to the left
    ax_sky.set_ylim(-10, 10)
    ax_pix.set_xlim(0, 20)
    ax_pix.set_ylim(0, 20)
    fig.draw_without_rendering()  # applies the equal aspect to the axes boxes
    assert _display_major_axis(beam_ellipse((8.0, 2.0, bpa), (0, 0)), ax_sky) == pytest.approx(expected, abs=0.02)
    pix = beam_ellipse((8.0, 2.0, bpa), (10, 10), cellsize=1.0)
    assert _display_major_axis(pix, ax_pix) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("bpa", [0.0, 30.0, 45.0, 120.0])
def test_beam_ellipse_matches_model_psf(bpa):
    """The pixel-frame ellipse's major axis is the model PSF's (second moments of gaussian_psf)."""
    psf = gaussian_psf((6.0, 3.0, bpa), 1.0)
    h = psf.shape[0] // 2
    dy, dx = np.mgrid[-h : h + 1, -h : h + 1]
    cov = np.array([[np.sum(psf * dx * dx), np.sum(psf * dx * dy)], [np.sum(psf * dx * dy), np.sum(psf * dy * dy)]])
    major = np.linalg.eigh(cov)[1][:, -1]
    angle = math.radians(beam_ellipse((6.0, 3.0, bpa), cellsize=1.0).angle)
    assert abs(np.dot(major, [math.cos(angle), math.sin(angle)])) == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------------------------------ pv orientation
def test_pv_positive_offsets_are_receding():
    """PA 90: the receding side is east (-x); pv_diagram puts it at positive offsets, red-shifted."""
    cube = model_cube(OBSPARS, pa=90.0, seed=1, **DISC)
    velocities = OBSPARS.velocities
    vsys = OBSPARS.centre_velocity
    offsets, pv = pv_diagram(cube, OBSPARS.centre_pixel, 90.0, width=3)
    positive, negative = pv[:, offsets > 2], pv[:, offsets < -2]
    v_pos = np.sum(positive.sum(axis=1) * velocities) / positive.sum()
    v_neg = np.sum(negative.sum(axis=1) * velocities) / negative.sum()
    assert v_pos > vsys + 50 and v_neg < vsys - 50
    # East (small x) of the centre is the receding half in the cube itself.
    east, west = cube[:, :, :14], cube[:, :, 18:]
    assert np.sum(east.sum(axis=(1, 2)) * velocities) / east.sum() > vsys + 50
    assert np.sum(west.sum(axis=(1, 2)) * velocities) / west.sum() < vsys - 50


# ------------------------------------------------------------------------------------------ posterior plots
def test_corner_and_traces_write_files(tmp_path):
    rng = np.random.default_rng(1)
    chain = rng.normal([60.0, 90.0, 5.0], [1.0, 2.0, 0.3], size=(60, 12, 3))
    chain[:10] += 10.0  # burn-in excursion
    labels = ["inc", "pa", "r_turn"]
    out = plot_corner(chain[10:].reshape(-1, 3), labels, tmp_path / "corner.png", truths=[60.0, None, 5.0], title="G")
    assert _read(out).shape[0] > 200
    chain_const = chain[10:].reshape(-1, 3).copy()
    chain_const[:, 2] = 5.0  # a fixed parameter has no dynamic range
    assert _read(plot_corner(chain_const, labels, tmp_path / "corner_const.png")).size
    out = plot_traces(chain, labels, tmp_path / "traces.png", burn_in=10, truths=[60.0, 90.0, None], title="G")
    assert _read(out).shape[0] > 200
    with pytest.raises(ValueError, match="chain must be"):
        plot_traces(chain[:, :, :2], labels, tmp_path / "bad.png")


# ------------------------------------------------------------------------------------------ survey plots
def _catalogue(truths: bool = True) -> pd.DataFrame:
    cat = pd.DataFrame(
        {
            "galaxy": ["a", "b", "c", "d", "e"],
            "status": ["ok", "ok", "failed", "ok", "ok"],
            "inc": [50.0, 60.0, np.nan, 45.0, 70.0],
            "inc_lo": [48.0, 57.0, np.nan, 44.0, 70.0],
            "inc_hi": [53.0, 61.0, np.nan, 47.0, 71.0],
            "pa": [10.0, 20.0, np.nan, 30.0, 40.0],
            "pa_lo": [9.0, 19.0, np.nan, 29.0, 39.0],
            "pa_hi": [11.0, 21.0, np.nan, 31.0, 41.0],
        }
    )
    if truths:
        cat["inc_true"] = [52.0, 58.0, 40.0, 45.0, 68.0]
    return cat


def test_pulls_on_hand_made_catalogue():
    table = pulls(_catalogue(), ["inc", "pa"])
    assert list(table.columns) == ["galaxy", "param", "value", "true", "sigma", "pull"]
    assert list(table["galaxy"]) == ["a", "b", "d", "e"]  # failed row dropped; pa has no truth
    assert set(table["param"]) == {"inc"}
    # a: fit below truth -> upper error 3; b: above -> lower error 3; d: exact -> 0; e: above, lower error 0 -> NaN
    np.testing.assert_allclose(table["sigma"], [3.0, 3.0, 1.0, 0.0])
    np.testing.assert_allclose(table["pull"][:3], [-2.0 / 3.0, 2.0 / 3.0, 0.0])
    assert np.isnan(table["pull"].iloc[3])
    assert pulls(_catalogue(truths=False), ["inc", "pa"]).empty


@pytest.mark.parametrize("truths", [True, False])
def test_survey_plots_with_and_without_truths(tmp_path, truths):
    cat = _catalogue(truths)
    for func in (plot_recovery, plot_pulls, plot_distributions):
        out = func(cat, ["inc", "pa"], tmp_path / f"{func.__name__}_{truths}.png")
        assert _read(out).shape[0] > 100


def test_survey_plots_with_no_ok_rows(tmp_path):
    cat = _catalogue()
    cat["status"] = "failed"
    for func in (plot_recovery, plot_pulls, plot_distributions):
        assert _read(func(cat, ["inc", "pa"], tmp_path / f"{func.__name__}.png")).size
    assert pulls(cat, ["inc"]).empty


# ------------------------------------------------------------------------------------------ KinMS_plotter
def test_kinms_plotter_on_xyv_cubes(tmp_path, monkeypatch):
    obspars = ObsPars(nx=32, ny=24, nv=20, cellsize=1.0, dv=20.0, beam=(4.0, 3.0, 30.0))
    cube = model_cube(obspars, pa=45.0, seed=1, **DISC)  # (v, y, x)
    xyv = np.transpose(cube, (2, 1, 0))
    args = (xyv, 32.0, 24.0, 400.0, 1.0, 20.0, [4.0, 3.0, 30.0])
    plotter = KinMS_plotter(*args, posang=45.0, overcube=xyv, rms=0.0, savepath=tmp_path, savename="fit")
    np.testing.assert_array_equal(plotter.data, cube)
    out = plotter.makeplots(block=False)
    assert out == tmp_path / "fit.png"
    assert _read(out).shape[:2] == _size(DIAGNOSTICS_FIGSIZE)
    monkeypatch.chdir(tmp_path)
    out = KinMS_plotter(*args, posang=45.0, pvdthick=3).makeplots()
    assert out == Path("KinMS_plotter.png") and (tmp_path / "KinMS_plotter.png").stat().st_size > 0
    out = KinMS_plotter(*args, savepath=tmp_path, savename="fit", pdf=True, title="T").makeplots()
    assert out.suffix == ".pdf" and out.stat().st_size > 0
    with pytest.raises(ValueError, match="give"):
        KinMS_plotter(cube, 32.0, 24.0, 400.0, 1.0, 20.0, 4.0)


def test_rotation_figure_shows_each_varying_profile_with_its_band(tmp_path):
    from kinms_core.parametric import ModelSpec
    from kinms_core.profile_plots import plot_profiles, profile_band, profile_samples

    rng = np.random.default_rng(2)
    n = 500
    samples = {"vflat": 200 + 5 * rng.standard_normal(n), "rturn": np.full(n, 2.0), "pa": np.full(n, 100.0)}
    samples |= {"inc": np.full(n, 50.0), "pa_grad": 1.0 + 0.1 * rng.standard_normal(n), "inc_grad": np.zeros(n)}
    samples |= {"sigma": np.full(n, 10.0)}
    radius = np.linspace(0, 30, 61)
    warped = ModelSpec(warp="linear", warp_radius=0.0)
    profiles = profile_samples(samples, warped, radius)
    assert set(profiles) == {"rotation", "pa", "inc"}  # no dispersion panel: it is constant
    assert np.median(profiles["pa"][:, -1]) == pytest.approx(130.0, abs=1.0)  # 100 + 1 deg/arcsec x 30"
    band = np.percentile(profiles["rotation"][:, -1], [16, 84])
    assert 8.0 < band[1] - band[0] < 12.0  # vflat's 1-sigma of 5 km/s, nearly all of it at 30"
    path = plot_profiles(samples, warped, radius, tmp_path / "rotation.png", title="G", beam=4.0)
    assert path.stat().st_size > 10_000
    # the velocity at the emission's radius, with its own error, is drawn over the band
    outer = {"radius": 12.0, "share": 0.9, "v": {"median": 160.0, "p16": 140.0, "p84": 175.0}}
    marked = plot_profiles(samples, warped, radius, tmp_path / "marked.png", title="G", beam=4.0, outer=outer)
    assert _read(marked).shape == _read(path).shape and not np.array_equal(_read(marked), _read(path))
    # the fit's own band of the rotation velocity replaces the samples' percentiles in the rotation panel
    band = {"radius": [0.0, 30.0], "p16": [0.0, 150.0], "median": [0.0, 160.0], "p84": [0.0, 170.0]}
    low, median, high = profile_band(profiles["rotation"], radius, band)
    assert median[-1] == pytest.approx(160.0) and high[30] == pytest.approx(85.0) and low[0] == 0.0
    assert np.allclose(profile_band(profiles["rotation"], radius)[1], np.median(profiles["rotation"], axis=0))
    banded = plot_profiles(samples, warped, radius, tmp_path / "banded.png", title="G", beam=4.0, band=band)
    assert _read(banded).shape == _read(path).shape and not np.array_equal(_read(banded), _read(path))
    # a ring-wise warp: flat inside its first radius, the turns at the others, flat beyond the last
    rings = ModelSpec(warp="rings", warp_radii=(5.0, 10.0, 20.0))
    samples |= {"dpa_1": np.full(n, 10.0), "dpa_2": 20.0 + rng.standard_normal(n), "dinc_1": np.zeros(n)}
    samples |= {"dinc_2": np.full(n, 5.0)}
    pa = np.median(profile_samples(samples, rings, radius)["pa"], axis=0)
    assert (pa[radius <= 5.0] == 100.0).all() and pa[radius == 10.0][0] == pytest.approx(110.0)
    assert pa[-1] == pytest.approx(120.0, abs=0.2)
    assert plot_profiles(samples, rings, radius, tmp_path / "rings.png", beam=4.0).stat().st_size > 10_000
