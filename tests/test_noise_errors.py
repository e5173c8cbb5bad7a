"""Noise that varies across the field, other sources, and honest errors under correlated noise.

A primary-beam corrected mock (noise rising towards the field's edge, NaN outside it) must give a noise map that
follows the primary beam and a mask that holds the galaxy and nothing at the edge; the sandwich error model must give
back the covariance of parameters under beam-correlated noise, which independent voxels understate.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tutorial_params

from kinms_core import ObsPars, model_cube
from kinms_core.noise import estimate_rms, noise_model, separate_sources, signal_mask
from kinms_core.parametric import GalaxyModel, ModelSpec
from kinms_core.prepare import noise_and_mask
from kinms_core.sandwich import ErrorModel, adjust_samples, data_noise_volume, error_model, sandwich_widths
from kinms_core.simulate import beam_correlated_noise

PB_OBSPARS = ObsPars(nx=96, ny=96, nv=24, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
GALAXY_RADIUS = 20.0  # arcsec: the tutorial's disc holds ~99% of its flux inside


def primary_beam(op: ObsPars, fwhm: float = 70.0) -> np.ndarray:
    """A Gaussian primary beam centred on the cube, ``(ny, nx)``."""
    yy, xx = np.indices((op.ny, op.nx), dtype=float)
    r2 = (xx - op.nx / 2) ** 2 + (yy - op.ny / 2) ** 2
    return np.exp(-4 * np.log(2) * r2 / fwhm**2)


@pytest.fixture(scope="module")
def pb_cube() -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's galaxy, observed with a primary beam: noise / PB, NaN where PB < 0.25. Returns (data, sigma)."""
    op = PB_OBSPARS
    galaxy = model_cube(op, seed=3, **tutorial_params(int_flux=60.0))
    pb = primary_beam(op)
    rms = 2e-3
    noise = beam_correlated_noise(op, rms, np.random.default_rng(11)) / pb[None]
    data = galaxy + noise
    sigma = np.broadcast_to(rms / pb[None], data.shape).copy()
    outside = np.broadcast_to(pb[None] < 0.25, data.shape)
    data[outside] = np.nan
    sigma[outside] = np.nan
    return data, sigma


def _radius(op: ObsPars) -> np.ndarray:
    yy, xx = np.indices((op.ny, op.nx), dtype=float)
    return np.hypot(xx - op.nx / 2, yy - op.ny / 2) * op.cellsize


def test_noise_map_follows_the_primary_beam(pb_cube):
    data, sigma = pb_cube
    model = noise_model(data, PB_OBSPARS)
    assert model.kind == "map" and model.spread["spatial"] > 0.3
    measured = model.cube(data.shape)[0]
    true = sigma[0]
    inside = np.isfinite(true)
    ratio = measured[inside] / true[inside]
    # the map follows 1/PB to the edge (a plain smoothing underestimated the edge by 20-30%)
    assert np.median(np.abs(ratio - 1.0)) < 0.08
    edge = inside & (_radius(PB_OBSPARS) > 0.8 * np.nanmax(np.where(inside, _radius(PB_OBSPARS), np.nan)))
    assert abs(np.median(measured[edge] / true[edge]) - 1.0) < 0.12


def test_uniform_noise_stays_one_number():
    op = ObsPars(nx=48, ny=48, nv=20, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
    data = beam_correlated_noise(op, 1e-3, np.random.default_rng(4))
    model = noise_model(data, op)
    assert model.kind == "uniform" and model.rms == pytest.approx(1e-3, rel=0.1)


def test_mask_of_a_primary_beam_corrected_cube_holds_the_galaxy_and_not_the_edge(pb_cube):
    data, _ = pb_cube
    op = PB_OBSPARS
    far = _radius(op)[None] > GALAXY_RADIUS + 3 * op.beam[0]
    noise, mask = noise_and_mask(data, op)
    assert noise.kind == "map"
    assert (mask & far).sum() == 0
    truth = model_cube(op, seed=3, **tutorial_params(int_flux=60.0))
    bright = truth > 0.2 * truth.max()
    assert mask[bright].mean() > 0.99
    # one RMS for the whole field is the edge's inflated one at the centre, and misses the galaxy's faint outskirts
    uniform = signal_mask(data, estimate_rms(data), op)
    assert truth[mask].sum() / truth.sum() > truth[uniform].sum() / truth.sum() + 0.015


def test_faint_sources_apart_from_the_galaxy_are_separated():
    mask = np.zeros((10, 60, 60), dtype=bool)
    snr = np.zeros(mask.shape)
    mask[2:8, 20:40, 20:40] = True  # the galaxy
    snr[2:8, 20:40, 20:40] = 5.0
    mask[3:5, 22:25, 22:25] = False  # a hole leaves it one region
    mask[4:6, 50:56, 50:56] = True  # faint and far: another source
    snr[4:6, 50:56, 50:56] = 1.0
    mask[4:6, 20:24, 42:46] = True  # faint but touching the galaxy's edge: a clump of it
    snr[4:6, 20:24, 42:46] = 1.0
    galaxy, others, records = separate_sources(mask, snr)
    assert others[4:6, 50:56, 50:56].all() and not others[4:6, 20:24, 42:46].any()
    assert galaxy[4:6, 20:24, 42:46].all() and not galaxy[4:6, 50:56, 50:56].any()
    assert len(records) == 1 and records[0]["x"] == [50, 56] and records[0]["channels"] == [4, 6]
    # a bright second region is kept whatever its distance (a companion of similar brightness is for the user)
    snr[4:6, 50:56, 50:56] = 100.0
    _, others, _ = separate_sources(mask, snr)
    assert not others.any()


# ---------------------------------------------------------------------------------------------- errors
SMALL = ObsPars(nx=32, ny=32, nv=16, cellsize=1.0, dv=20.0, beam=(3.0, 3.0, 0.0))
NAMES = ["pa", "inc", "vsys", "vflat"]
TRUTH = {"flux": 20.0, "pa": 60.0, "inc": 55.0, "xc": 0.0, "yc": 0.0, "vsys": 0.0, "sigma": 10.0}
TRUTH |= {"scalerad": 3.0, "vflat": 180.0, "rturn": 1.5}


def _small_model() -> tuple[GalaxyModel, callable]:
    galaxy = GalaxyModel(SMALL, ModelSpec(), n_clouds=2**15, seed=2)

    def cube(theta: np.ndarray) -> np.ndarray:
        return galaxy.cube({**TRUTH, **dict(zip(NAMES, theta, strict=True))})

    return galaxy, cube


def test_sandwich_gives_the_spread_of_fits_under_beam_correlated_noise():
    """Linearised fits of many noise realisations scatter as the error model says, not as independent voxels say."""
    _, cube = _small_model()
    theta = np.array([TRUTH[n] for n in NAMES])
    low, high = np.array([0.0, 10.0, -100.0, 50.0]), np.array([120.0, 89.0, 100.0, 400.0])
    rms = 1e-3
    rng = np.random.default_rng(8)
    data = cube(theta) + beam_correlated_noise(SMALL, rms, rng)
    model = error_model(
        cube, theta, NAMES, data, rms, None, low, high, beam_fwhm_pixels=3.0, beam_area_pixels=SMALL.beam_area_pixels
    )
    from kinms_core.sandwich import jacobian

    columns = jacobian(cube, theta, np.array(model.steps), low, high, np.full(SMALL.shape, 1.0 / rms))
    flat = columns.reshape(len(NAMES), -1)
    h_inv = np.linalg.inv(flat @ flat.T)
    shifts = np.array([h_inv @ (flat @ (beam_correlated_noise(SMALL, rms, rng) / rms).ravel()) for _ in range(300)])
    empirical = shifts.std(axis=0)
    sandwich = np.sqrt(np.diag(model.covariance))
    noise_only = np.array([model.diagnostics["sd_noise"][n] for n in NAMES])
    independent = np.sqrt(np.diag(h_inv))
    assert np.all(np.abs(noise_only / empirical - 1.0) < 0.2), (noise_only, empirical)
    assert np.all(np.abs(sandwich / empirical - 1.0) < 0.3), (sandwich, empirical)
    assert np.all(empirical / independent > 2.0)  # independent voxels understate the errors ~sqrt(beam area) times
    # the chain's temperature is the noise's inflation: about the beam's area in pixels
    assert 0.5 * SMALL.beam_area_pixels < model.temperature < 1.5 * SMALL.beam_area_pixels
    assert 0.6 < model.diagnostics["noise_correlation_x"] < 0.9  # a 3-pixel beam's noise at lag 1
    # the widths alone (a model family's, kinms_core.family_errors) are the error model's, for a quarter of the work
    widths = sandwich_widths(
        cube, theta, NAMES, data, rms, None, low, high, beam_fwhm_pixels=3.0, beam_area_pixels=SMALL.beam_area_pixels
    )
    assert widths == pytest.approx(model.standard_deviations, rel=1e-12)


def test_data_noise_volume_is_the_noise_s_and_not_the_galaxy_s():
    """The noise correlation volume that the BIC divides by is measured on the data away from the signal mask: the
    beam's area for beam-correlated noise, 1 for white noise, whatever the galaxy (so one value for every model
    family fitted to a cube)."""
    op = PB_OBSPARS
    rng = np.random.default_rng(5)
    rms = 2e-3
    galaxy = model_cube(op, seed=3, **tutorial_params(int_flux=60.0))
    mask = galaxy > 0.5 * rms
    beam = {"beam_fwhm_pixels": op.beam[0] / op.cellsize, "beam_area_pixels": op.beam_area_pixels}
    correlated = beam_correlated_noise(op, rms, rng)
    volume = data_noise_volume(galaxy + correlated, rms, mask, **beam)
    assert abs(volume / op.beam_area_pixels - 1.0) < 0.15, (volume, op.beam_area_pixels)
    # a galaxy three times brighter (the same mask) leaves it within 5%: the emission is not counted as noise (only
    # its faint wings beyond the mask's dilation are)
    assert data_noise_volume(3.0 * galaxy + correlated, rms, mask, **beam) == pytest.approx(volume, rel=0.05)
    white = rng.standard_normal(op.shape) * rms
    assert data_noise_volume(galaxy + white, rms, mask, **beam) == pytest.approx(1.0, abs=0.15)
    # a galaxy that fills the cube leaves no noise to measure: the beam's area is assumed
    assert data_noise_volume(galaxy + correlated, rms, np.ones(op.shape, bool), **beam) == op.beam_area_pixels


def test_adjusted_samples_take_the_sandwich_covariance():
    curvature = np.array([[4.0, 1.0], [1.0, 2.0]])
    meat = np.array([[40.0, 5.0], [5.0, 8.0]])
    model = ErrorModel(
        names=["a", "b"],
        theta=[0.0, 0.0],
        steps=[0.1, 0.1],
        curvature=curvature.tolist(),
        meat=meat.tolist(),
        noise_meat=(3 * curvature).tolist(),
        temperature=3.0,
        lags=[1, 1, 1],
    )
    rng = np.random.default_rng(1)
    samples = rng.multivariate_normal([1.0, 2.0], 3.0 * np.linalg.inv(curvature), 200_000)
    adjusted = adjust_samples(samples, np.array([1.0, 2.0]), model, np.array([-1e9, -1e9]), np.array([1e9, 1e9]))
    target = np.linalg.inv(curvature) @ meat @ np.linalg.inv(curvature)
    np.testing.assert_allclose(np.cov(adjusted.T), target, rtol=0.03, atol=1e-3)
    np.testing.assert_allclose(np.median(adjusted, axis=0), [1.0, 2.0], atol=0.01)
    # a parameter the data do not constrain keeps its samples
    model.curvature = [[4.0, 0.0], [0.0, 0.0]]
    model.meat = [[40.0, 0.0], [0.0, 0.0]]
    kept = adjust_samples(samples, np.array([1.0, 2.0]), model, np.array([-1e9, -1e9]), np.array([1e9, 1e9]))
    np.testing.assert_array_equal(kept[:, 1], samples[:, 1])


# ---------------------------------------------------------------------------------------------- cloudlets
def test_brighter_cubes_get_more_cloudlets_until_the_model_is_smooth():
    """The model is a histogram of cloudlets: its Monte-Carlo noise must be small against the data's noise, so a
    cube with a hundred times less noise needs more of them; a faint one keeps the starting 2^12."""
    from kinms_core.likelihood import FitData, enough_clouds, model_noise_chi2

    values = {**TRUTH, "sigma": 5.0}
    truth = GalaxyModel(SMALL, ModelSpec(), n_clouds=2**16, seed=9).cube(values)
    chosen = {}
    for rms in (1e-2, 1e-4):
        data = FitData(data=truth, obspars=SMALL, rms=rms, n_detected=100)
        chosen[rms], chi2 = enough_clouds(data, ModelSpec(), values, start=2**12, seed=1)
        assert chi2 <= 0.25 * SMALL.beam_area_pixels or chosen[rms] == 2**18
    assert chosen[1e-2] == 2**12 and chosen[1e-4] > 2**13
    pair = [GalaxyModel(SMALL, ModelSpec(), n_clouds=2**12, seed=s) for s in (1, 2)]
    noise = np.full(SMALL.shape, 1e-4)
    assert model_noise_chi2(*pair, values, noise) > 0.25 * SMALL.beam_area_pixels


def test_a_dispersion_of_channels_is_spread_without_monte_carlo_noise():
    """With a dispersion of at least a channel the cloudlets' random velocities are replaced by an exact spread: two
    models with different cloudlets then differ far less."""
    fine = ObsPars(nx=32, ny=32, nv=40, cellsize=1.0, dv=5.0, beam=(3.0, 3.0, 0.0))

    def difference(sigma: float) -> float:
        a, b = (GalaxyModel(fine, ModelSpec(), n_clouds=2**14, seed=s).cube({**TRUTH, "sigma": sigma}) for s in (1, 2))
        return float(np.linalg.norm(a - b) / np.linalg.norm(a))

    assert difference(12.0) < 0.5 * difference(4.9)  # 4.9 < dv: still random velocities
