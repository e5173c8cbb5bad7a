"""Fitting one galaxy: settings validation, likelihood, sampler coordinates, recovery, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import chain_steps, tutorial_params

from kinms_core import ObsPars, model_cube, write_cube
from kinms_core.errors import SettingsError
from kinms_core.family_errors import SEARCH
from kinms_core.fit import (
    BAND_RADII,
    ChainFile,
    _initial_walkers,
    _warn_rings_beyond_gas,
    fit_galaxy,
    information_criterion,
    laplace_covariance,
)
from kinms_core.galaxy import fit_prepared
from kinms_core.likelihood import (
    FitData,
    LogPosterior,
    inflated_rms,
    parameters_to_sampling,
    sampling_to_parameters,
)
from kinms_core.prepare import prepare_cube
from kinms_core.quality import FLAGS, bounded_parameters
from kinms_core.settings import apply_overrides, load_settings
from kinms_core.simulate import beam_correlated_noise

TUTORIAL_TRUTH = {"pa": 270.0, "inc": 45.0, "vflat": 200.0, "rturn": 2.0, "scalerad": 5.0}
# The tutorial's (2N)^1/4-corrected 1-sigma errors, GAStimator on the seed's cube.
TUTORIAL_ERRORS = {"pa": 1.0, "inc": 2.0, "vflat": 4.0, "rturn": 0.17, "scalerad": 0.22}


def tutorial_settings(**fit: object) -> dict:
    """The tutorial's fit: flux fixed at 30, its bounds and purposely-off guesses, chi2_correction all."""
    return {
        "parameters": {
            "flux": {"guess": 30, "fixed": True},
            "pa": {"guess": 275, "min": 1, "max": 360},
            "inc": {"guess": 55, "min": 10, "max": 80},
            "vflat": {"guess": 210, "min": 50, "max": 400},
            "rturn": {"guess": 2.5, "min": 0.1, "max": 20},
            "scalerad": {"guess": 4.5, "min": 0.1, "max": 10},
            "xc": {"guess": 0, "fixed": True},
            "yc": {"guess": 0, "fixed": True},
            "vsys": {"guess": 0, "fixed": True},
            "sigma": {"guess": 0, "fixed": True},
        },
        # the tutorial's mock noise is white: no correlation between pixels
        "fit": {
            "errors": "scaled",
            "chi2_correction": "all",
            "noise_correlation": "none",
            "nwalkers": 24,
            "max_steps": 300,
            "check_every": 100,
            "seed": 2,
            **fit,
        },
        "model": {"n_clouds": 32768},
    }


@pytest.fixture(scope="module")
def tutorial_data() -> FitData:
    """The tutorial's galaxy with noise 1e-3 (a different cloudlet seed than the fit's model)."""
    op = ObsPars(nx=64, ny=64, nv=25, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
    truth = model_cube(op, seed=99, **tutorial_params())
    data = truth + np.random.default_rng(5).normal(size=truth.shape) * 1e-3
    return FitData(data=data, obspars=op, rms=1e-3, n_detected=int((truth > 3e-3).sum()), galaxy="tutorial")


# ---------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"fit": {"nwalkrs": 3}}, r"settings key fit: Additional properties .*nwalkrs"),
        ({"parameters": {"inc": {"gess": 3}}}, r"settings key parameters.inc: Additional properties .*gess"),
        ({"parameters": {"incl": {"guess": 3}}}, r"unknown parameter\(s\) \['incl'\]"),
        ({"model": {"rotation_curve": "flat"}}, r"settings key model.rotation_curve"),
        ({"fit": {"chi2_correction": "some"}}, r"settings key fit.chi2_correction"),
        ({"parameters": {"vflat": {"prior": {"gaussian": [200]}}}}, r"parameters.vflat.prior.gaussian"),
        ({"model": {"rotation_curve": "rings"}}, r"ring_radii must be at least two"),
    ],
)
def test_bad_settings_name_the_key(raw, match):
    with pytest.raises(ValueError, match=match):
        load_settings(raw)


@pytest.mark.parametrize(
    ("parameters", "match"),
    [
        ({"inc": {"guess": 95, "min": 5, "max": 89}}, r"parameters.inc.guess 95 lies outside its bounds \[5, 89\]"),
        ({"pa": {"min": 10, "max": 10}}, r"parameters.pa: min \(10\) must be below max \(10\)"),
        ({"vflat": {"guess": "auto"}}, r"parameters.vflat.guess is auto but the data gave no value"),
    ],
)
def test_bad_parameter_settings_name_the_parameter(parameters, match):
    guesses = {name: 1.0 for name in load_settings().spec.parameter_names if name != "vflat"}
    bounds = {name: (0.0, 360.0) for name in guesses}
    bounds["vflat"] = (0.0, 500.0)
    with pytest.raises(ValueError, match=match):
        load_settings({"parameters": parameters}).resolved(guesses, bounds)


def test_all_fixed_is_an_error_when_the_settings_are_loaded():
    names = load_settings().spec.parameter_names
    with pytest.raises(SettingsError, match="every parameter is fixed"):
        load_settings({"parameters": {n: {"guess": 1.0, "fixed": True} for n in names}})


def test_auto_takes_the_data_guesses_and_clips_them_into_user_bounds():
    settings = load_settings({"parameters": {"inc": {"min": 30, "max": 60}}})
    guesses = {n: 2.0 for n in settings.spec.parameter_names}
    guesses["inc"] = 75.0
    bounds = {n: (0.0, 100.0) for n in settings.spec.parameter_names}
    resolved = {p.name: p for p in settings.resolved(guesses, bounds)}
    assert (resolved["inc"].guess, resolved["inc"].min, resolved["inc"].max) == (60.0, 30.0, 60.0)
    assert (resolved["pa"].guess, resolved["pa"].min, resolved["pa"].max) == (2.0, 0.0, 100.0)


def test_sheet_overrides_apply_to_one_parameter_field():
    raw = apply_overrides(
        {"parameters": {"inc": {"min": 5}}}, {"inc_guess": "50", "flux_fixed": "true", "vsys_min": ""}
    )
    assert raw["parameters"]["inc"] == {"min": 5, "guess": 50.0}
    assert raw["parameters"]["flux"] == {"fixed": True}
    assert "vsys" not in raw["parameters"]
    with pytest.raises(ValueError, match="inc_gues"):
        apply_overrides({}, {"inc_gues": 3})
    with pytest.raises(ValueError, match="give true or false"):
        apply_overrides({}, {"flux_fixed": "maybe"})


# -------------------------------------------------------------------------------------------- likelihood
def test_inflated_rms_follows_the_tutorial():
    assert inflated_rms(1e-3, "all", n_detected=10, n_voxels=102400) == pytest.approx(1e-3 * (2 * 102400) ** 0.25)
    assert inflated_rms(1e-3, "detected", n_detected=5000, n_voxels=102400) == pytest.approx(1e-3 * 1e4**0.25)
    assert inflated_rms(1e-3, "none", n_detected=5000, n_voxels=102400) == 1e-3
    # beam-correlated noise: each independent sample spans a beam area of pixels
    beam = inflated_rms(1e-3, "none", n_detected=1, n_voxels=1, noise_correlation="beam", beam_pixels=18.1)
    assert beam == pytest.approx(1e-3 * 18.1**0.5)
    both = inflated_rms(1e-3, "detected", n_detected=5000, n_voxels=1, noise_correlation="beam", beam_pixels=18.1)
    assert both == pytest.approx(1e-3 * 18.1**0.5 * 1e4**0.25)


@pytest.mark.parametrize("rms", [0.0, np.nan, -1.0])
def test_bad_rms_is_refused(tutorial_data, rms):
    with pytest.raises(ValueError, match="rms must be a positive finite noise level"):
        FitData(data=tutorial_data.data, obspars=tutorial_data.obspars, rms=rms, n_detected=10)


def test_nan_voxels_are_ignored_not_propagated(tutorial_data):
    settings = load_settings(tutorial_settings())
    params = settings.resolved({}, {})
    holes = tutorial_data.data.copy()
    holes[:, :5, :] = np.nan
    with_holes = FitData(data=holes, obspars=tutorial_data.obspars, rms=1e-3, n_detected=100)
    post = LogPosterior(with_holes, params, settings.spec, correction="none", n_clouds=4096, seed=0)
    theta = post.guess
    chi2 = post.chi2(theta)
    assert np.isfinite(chi2) and np.isfinite(post(theta))
    model = post.model_cube(theta)
    expected = np.sum(((tutorial_data.data - model)[:, 5:, :] / 1e-3) ** 2)
    assert chi2 == pytest.approx(expected, rel=1e-10)
    assert post.n_voxels == holes[:, 5:, :].size


def test_sampler_coordinates_round_trip_and_keep_priors_uniform():
    names = ["pa", "inc", "vflat", "rturn"]
    theta = np.array([[10.0, 30.0, 200.0, 2.0], [50.0, 80.0, 120.0, 1.0]])
    u = parameters_to_sampling(theta, names)
    assert u[0, 2] == pytest.approx(100.0)  # 200 sin 30
    np.testing.assert_allclose(sampling_to_parameters(u, names), theta)
    # without a free inclination the coordinates are the parameters themselves
    np.testing.assert_array_equal(parameters_to_sampling(theta, ["pa", "x", "vflat", "rturn"]), theta)


# ---------------------------------------------------------------------------------------------- recovery
@pytest.mark.slow
@pytest.mark.parametrize("extra_free", [False, True], ids=["tutorial", "centre_vsys_sigma_free"])
def test_tutorial_fit_recovers_the_truth_with_honest_errors(tutorial_data, tmp_path, extra_free):
    raw = tutorial_settings()
    if extra_free:
        raw["parameters"]["xc"] = {"guess": 0.5, "min": -5, "max": 5}
        raw["parameters"]["yc"] = {"guess": -0.5, "min": -5, "max": 5}
        raw["parameters"]["vsys"] = {"guess": 10, "min": -100, "max": 100}
        raw["parameters"]["sigma"] = {"guess": 5, "min": 0, "max": 50}
    summary = fit_galaxy(tutorial_data, load_settings(raw), tmp_path, processes=2, progress=False)
    truth = dict(TUTORIAL_TRUTH, xc=0.0, yc=0.0, vsys=0.0, sigma=0.0)
    for name in summary["free_parameters"]:
        p = summary["parameters"][name]
        sigma = 0.5 * (p["p84"] - p["p16"])
        assert abs(p["median"] - truth[name]) < 2 * sigma + (1.0 if name == "sigma" else 0.0), (name, p)
        if name in TUTORIAL_ERRORS:
            assert 0.5 * TUTORIAL_ERRORS[name] < sigma < 3 * TUTORIAL_ERRORS[name], (name, sigma)
    assert summary["steps"] == 300 and 0.1 < summary["acceptance"] < 0.6
    assert summary["chi2_reduced"] == pytest.approx(1.0, abs=0.05)
    for name in ("summary.json", "chain.h5", "model.fits", "residual.fits", "posterior.csv"):
        assert (tmp_path / name).stat().st_size > 0


# ------------------------------------------------------------------------------------------------ resume
def small_galaxy(**obspars: object) -> tuple[ObsPars, np.ndarray]:
    """A small noiseless mock (32x32x16, 2"/pixel, beam 6"x5") and its grid."""
    rad = np.arange(0, 40, 0.5)
    op = ObsPars(nx=32, ny=32, nv=16, cellsize=2.0, dv=25.0, beam=(6.0, 5.0, 20.0), v_start=800, **obspars)
    cube = model_cube(
        op,
        n_clouds=2**15,
        seed=4,
        inc=60.0,
        pa=120.0,
        sb_rad=rad,
        sb_prof=np.exp(-rad / 6.0),
        vel_rad=rad,
        vel_prof=180 * 2 / np.pi * np.arctan(rad / 3.0),
        int_flux=20.0,
        v_offset=1000.0 - op.centre_velocity,
    )
    return op, cube


@pytest.mark.parametrize(("radii", "warned"), [((10.0, 20.0, 28.0), False), ((10.0, 20.0, 45.0), True)])
def test_a_ring_wise_warp_with_rings_beyond_the_gas_is_warned_of(radii, warned, caplog):
    """The small mock's mask, its emission above 5% of the peak, reaches about 30" from the centre: a ring inside
    it passes, one at 45" is named."""
    op, cube = small_galaxy()
    mask = cube > 0.05 * cube.max()
    fit_data = FitData(data=cube, obspars=op, rms=1e-3, n_detected=int(mask.sum()), mask=mask, galaxy="small")
    settings = load_settings({"model": {"warp": "rings", "warp_radii": list(radii)}})
    with caplog.at_level("WARNING", logger="kinms_core.fit"):
        _warn_rings_beyond_gas(fit_data.galaxy, settings, fit_data.emission_extent)
    assert ('45.0"' in caplog.text and "warp_radii" in caplog.text) is warned
    assert warned or not caplog.text
    # auto radii end at the mask's reach
    auto = load_settings({"model": {"warp": "rings"}}).for_data({"scalerad": 12.0}, fit_data.emission_extent)
    assert fit_data.emission_extent < 3 * 1.678 * 12.0
    assert auto.spec.warp_radii[-1] == pytest.approx(fit_data.emission_extent)


@pytest.fixture(scope="module")
def small_cube(tmp_path_factory):
    """The small mock on disk, with white noise."""
    path = tmp_path_factory.mktemp("cube") / "small.fits"
    op, cube = small_galaxy(ra=30.0, dec=-10.0)
    cube += np.random.default_rng(3).normal(size=cube.shape) * 2e-3
    write_cube(path, cube, op)
    return path


def _fit_command(cube, outdir, settings):
    return [
        sys.executable,
        "-m",
        "kinms_core.cli",
        "fit",
        str(cube),
        "--settings",
        str(settings),
        "-o",
        str(outdir),
        "--no-progress",
        "--no-plots",
        "--galaxy",
        "small",
    ]


def _comparable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("runtime_s", "resumed")}


@pytest.mark.slow
def test_killed_fit_resumes_from_its_checkpoint_and_ends_identically(small_cube, tmp_path):
    settings = tmp_path / "fit.yaml"
    settings.write_text(
        "model: {n_clouds: 4096}\nfit: {nwalkers: 20, max_steps: 400, check_every: 50, seed: 7, tau_factor: 1000}\n"
    )
    reference = subprocess.run(_fit_command(small_cube, tmp_path / "ref", settings), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    ref = json.loads((tmp_path / "ref" / "summary.json").read_text())

    out = tmp_path / "killed"
    proc = subprocess.Popen(_fit_command(small_cube, out, settings), stderr=subprocess.DEVNULL)
    steps_before = 0
    deadline = time.time() + 300  # the optimiser, the sides and the families come first
    while time.time() < deadline and steps_before < 100 and proc.poll() is None:
        time.sleep(0.1)
        steps_before = chain_steps(out / "chain.h5")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists(), "the fit finished before it could be killed"
    assert 0 < steps_before < 400

    resumed = subprocess.run(_fit_command(small_cube, out, settings), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    started_at = int(resumed.stderr.split("from step ")[1].split()[0])
    assert started_at >= steps_before  # continued from the saved steps, not from zero
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True and summary["steps"] == 400
    assert _comparable(summary) == _comparable(ref)


def test_chain_write_waits_for_a_reader_to_close_the_file(tmp_path):
    """Someone reading chain.h5 (progress, a plot) holds HDF5's lock; the fit's next write waits, it does not fail."""
    import h5py

    path = tmp_path / "chain.h5"
    backend = ChainFile(str(path))
    backend.reset(4, 2)
    hold = "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r'); print('open', flush=True); time.sleep(1.0)"
    reader = subprocess.Popen([sys.executable, "-c", hold, str(path)], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "open"
    with pytest.raises(BlockingIOError):
        h5py.File(path, "a")  # what emcee's own backend does, and fails
    start = time.perf_counter()
    with backend.open("a") as f:
        f.attrs["written"] = True
    waited = time.perf_counter() - start
    reader.wait()
    assert waited > 0.3
    with h5py.File(path, "r") as f:
        assert f.attrs["written"]


def test_a_step_killed_before_its_commit_leaves_the_chain_file_as_after_the_step_before(tmp_path):
    """A fit killed while a step is written resumes from the step before it: the chain row, emcee's accepted moves
    and random state written, but not the checkpoint that commits them, are not read back."""
    import emcee
    import h5py

    path = tmp_path / "chain.h5"
    backend = ChainFile(str(path))
    backend.reset(6, 2)
    sampler = emcee.EnsembleSampler(6, 2, lambda x: -0.5 * float(x @ x), backend=backend)
    sampler.random_state = np.random.RandomState(5).get_state()  # noqa: NPY002 - emcee's own generator type
    sampler.run_mcmc(np.random.default_rng(1).normal(size=(6, 2)), 5)
    steps, accepted, state = backend.iteration, backend.accepted.copy(), backend.random_state
    assert steps == 5 and accepted.sum() > 0
    with h5py.File(path, "a") as f:  # what emcee's save_step writes of step 6 before the step count
        group = f["mcmc"]
        group["chain"].resize(6, axis=0)
        group["chain"][5] = 9.0
        group["accepted"][:] += 1.0
        group.attrs["random_state_2"] = 123
    assert backend.iteration == steps
    np.testing.assert_array_equal(backend.accepted, accepted)
    assert backend.random_state[2] == state[2] != 123
    np.testing.assert_array_equal(backend.random_state[1], state[1])
    # and the run continues from there, the next step overwriting the uncommitted row
    sampler.run_mcmc(None, 1)
    assert backend.iteration == 6 and not np.any(backend.get_chain()[5] == 9.0)


def test_failed_prepare_becomes_a_failed_fit_status(tmp_path):
    bad = tmp_path / "image.fits"
    write_cube(tmp_path / "ok.fits", np.zeros((1, 8, 8)), ObsPars(nx=8, ny=8, nv=1, cellsize=1, dv=1, beam=2))
    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((8, 8))).writeto(bad)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kinms_core.cli",
            "fit",
            str(bad),
            "-o",
            str(tmp_path / "out"),
            "--record-failure",
            "--no-plots",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads((tmp_path / "out" / "prepared" / "status.json").read_text())
    assert status["status"] == "failed" and "image.fits" in status["error"]


@pytest.mark.slow
def test_robust_errors_are_the_default_and_recorded(tmp_path):
    """The default fit measures the noise's correlation (a beam of 8.5 pixels here) and reports errors of the sandwich
    covariance's size, with the side and family terms (the spread between the families and what their own widths add)
    in quadrature; posterior.csv holds the samples the summary's percentiles come from."""
    op, truth = small_galaxy()
    write_cube(tmp_path / "cube.fits", truth + beam_correlated_noise(op, 2e-3, np.random.default_rng(3)), op)
    prepare_cube(tmp_path / "cube.fits", tmp_path / "prepared")
    raw = {"model": {"n_clouds": 4096}, "fit": {"nwalkers": 20, "max_steps": 400, "seed": 3}}
    summary = fit_prepared(tmp_path / "prepared", raw, tmp_path, progress=False)
    likelihood = summary["likelihood"]
    assert summary["errors"] == "robust" and summary["noise_model"] == "uniform"
    assert 0.5 * op.beam_area_pixels < likelihood["temperature"] < 2.0 * op.beam_area_pixels
    assert likelihood["inflation"] >= 0.8 * likelihood["temperature"]
    assert set(summary["flags"]) <= set(FLAGS) and summary["flags"]["not_converged"]
    # the two sides were fitted apart (the centre held), and the families that extend the model from the best point
    sides, families = likelihood["sides"]["half_difference"], likelihood["families"]
    assert set(sides) == set(summary["free_parameters"]) - {"xc", "yc"}
    assert sum(families["weights"].values()) == pytest.approx(1.0)
    assert {"radial", "bisymmetric", "thick", "warp", "sigma_linear", "lopsided", "data"} <= set(families["best"])
    assert set(families["widths"]) == set(families["best"]) and set(families["within"]) == set(families["spread"])
    assert families["search"] == SEARCH and len(families["chosen"]) <= 3
    family_terms = {name: np.hypot(families["spread"][name], families["within"][name]) for name in families["spread"]}
    samples = np.loadtxt(tmp_path / "posterior.csv", delimiter=",", skiprows=1)
    for k, name in enumerate(summary["free_parameters"]):
        entry = summary["parameters"][name]
        low, high = np.percentile(samples[:, k], [16, 84])
        assert (low, high) == pytest.approx((entry["p16"], entry["p84"]))
        expected = np.hypot(likelihood["sandwich_sd"][name], np.hypot(sides.get(name, 0.0), family_terms[name]))
        assert 0.4 < 0.5 * (high - low) / expected < 3.0, (name, 0.5 * (high - low), expected)
    # without side and family errors the same chain (same seed; the options do not enter it) gives the sandwich's
    raw["fit"] |= {"side_errors": False, "family_errors": False}
    narrow = fit_prepared(tmp_path / "prepared", raw, tmp_path / "narrow", progress=False)
    assert narrow["likelihood"]["sides"] == {} and narrow["likelihood"]["families"] == {}
    # A posterior piled against its bound (this coarse model's dispersion, near zero) is neither Gaussian nor widened
    # symmetrically: its samples are clipped at the bound, and the fit flags it
    piled = set(bounded_parameters(narrow["parameters"])) | set(bounded_parameters(summary["parameters"]))
    for name in piled:
        assert summary["flags"]["at_bound"] or narrow["flags"]["at_bound"], name
    for name in set(summary["free_parameters"]) - piled:
        wide, thin = summary["parameters"][name], narrow["parameters"][name]
        thin_width = 0.5 * (thin["p84"] - thin["p16"])
        # of the sandwich's size, not equal to it: this coarse model's posterior is not Gaussian in scalerad and
        # inc, and its converged chain is up to 2.6 times as wide as the Laplace approximation there
        assert 0.4 < thin_width / likelihood["sandwich_sd"][name] < 4.0, name
        expected = np.hypot(thin_width, np.hypot(sides.get(name, 0.0), family_terms[name]))
        assert 0.5 * (wide["p84"] - wide["p16"]) == pytest.approx(expected, rel=0.15), name
    # the rotation at the emission's radius, with its own side and family terms; the truth's v sin i within them
    outer, thin_outer = summary["outer_rotation"], narrow["outer_rotation"]
    assert 0.0 < outer["radius"] == thin_outer["radius"] < 0.5 * op.nx * op.cellsize
    truth_v = 180.0 * 2.0 / np.pi * np.arctan(outer["radius"] / 3.0)
    for key, true_value in (("v", truth_v), ("vsini", truth_v * np.sin(np.radians(60.0)))):
        wide, thin = outer[key], thin_outer[key]
        assert thin["sides"] == thin["families"] == 0.0
        expected = np.hypot(0.5 * (thin["p84"] - thin["p16"]), np.hypot(wide["sides"], wide["families"]))
        assert 0.5 * (wide["p84"] - wide["p16"]) == pytest.approx(expected, rel=0.15), key
        assert abs(wide["median"] - true_value) < 3.0 * 0.5 * (wide["p84"] - wide["p16"]), key
    # the rotation curve's band is made the same way at every radius: at r_out it is the velocity's interval there
    band = summary["rotation_curve"]
    assert len(band["radius"]) == BAND_RADII and band["radius"][-1] == pytest.approx(0.5 * op.nx * op.cellsize)
    assert np.all(np.array(band["p16"]) <= np.array(band["median"])) and band["median"][0] == 0.0
    assert np.all(np.array(band["median"]) <= np.array(band["p84"]))
    at_out = [np.interp(outer["radius"], band["radius"], band[key]) for key in ("p16", "median", "p84")]
    assert at_out == pytest.approx([outer["v"]["p16"], outer["v"]["median"], outer["v"]["p84"]], rel=0.05)
    # the families alone: the same chain, resumed, with their terms in quadrature
    raw["fit"]["family_errors"] = True
    averaged = fit_prepared(tmp_path / "prepared", raw, tmp_path / "narrow", progress=False)
    assert averaged["resumed"] and averaged["likelihood"]["families"]["spread"] == families["spread"]
    piled |= set(bounded_parameters(averaged["parameters"]))
    for name, term in family_terms.items():
        wide, thin = averaged["parameters"][name], narrow["parameters"][name]
        if name in piled:
            continue
        expected = np.hypot(0.5 * (thin["p84"] - thin["p16"]), term)
        assert 0.5 * (wide["p84"] - wide["p16"]) == pytest.approx(expected, rel=0.15), name


class _StubPosterior:
    """What information_criterion reads of a posterior: the voxel count, the free parameters, the price of a map from
    the data and the chi-square."""

    def __init__(self, n_voxels: int, n_free: int, chi2: float, map_parameters: float = 0.0) -> None:
        self.n_voxels, self.free, self._chi2 = n_voxels, list(range(n_free)), chi2
        self.map_parameters = map_parameters

    def chi2(self, theta: np.ndarray) -> float:
        return self._chi2


def test_information_criterion_counts_correlated_voxels_once() -> None:
    # 10,000 voxels with 20 voxels per independent noise sample hold 500 independent samples
    result = information_criterion(_StubPosterior(10_000, 8, 12_000.0), np.zeros(8), 20.0)
    assert result["n_effective"] == pytest.approx(500.0)
    assert result["bic"] == pytest.approx(600.0 + 8 * np.log(500.0))
    # one more parameter pays ln(500) = 6.2: it must lower the chi-square by more than 6.2 x 20 to win
    richer = information_criterion(_StubPosterior(10_000, 9, 12_000.0 - 20 * 6.0), np.zeros(9), 20.0)
    assert richer["bic"] > result["bic"]
    better = information_criterion(_StubPosterior(10_000, 9, 12_000.0 - 20 * 7.0), np.zeros(9), 20.0)
    assert better["bic"] < result["bic"]


def test_a_map_from_the_data_pays_for_its_beams_in_the_information_criterion() -> None:
    parametric = information_criterion(_StubPosterior(10_000, 10, 12_000.0), np.zeros(10), 20.0)
    # a map with 30 independent beams in its footprint and one parameter fewer (no scale length)
    from_data = information_criterion(_StubPosterior(10_000, 9, 12_000.0 - 20 * 25 * 6.2, 30.0), np.zeros(9), 20.0)
    assert from_data["map_parameters"] == 30.0
    assert from_data["bic"] == pytest.approx(parametric["bic"] - 25 * 6.2 + 29 * np.log(500.0))
    assert from_data["bic"] > parametric["bic"]  # its chi-square fell by less than its beams cost


def test_walkers_start_at_the_laplace_width_inside_the_bounds():
    """With the chain's Laplace covariance the walkers start at the posterior's width and correlation (an ensemble
    much narrower than the posterior spends the chain's first steps expanding); a parameter it does not constrain
    starts in the small ball; every walker is inside the bounds."""
    bounds = SimpleNamespace(low=np.array([0.0, 0.0, 0.0]), high=np.array([360.0, 90.0, 10.0]))
    centre = np.array([180.0, 89.5, 5.0])
    covariance = np.array([[4.0, 1.5, 0.0], [1.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    walkers = _initial_walkers(centre, bounds, 4000, 1e-3, 7, covariance)
    assert np.all((walkers >= bounds.low) & (walkers <= bounds.high))
    assert np.std(walkers[:, 0]) == pytest.approx(2.0, rel=0.05)
    assert np.corrcoef(walkers[:, 0], walkers[:, 1])[0, 1] > 0.3  # kept, though inc is folded at its bound
    assert np.std(walkers[:, 2]) == pytest.approx(1e-3 * 10.0, rel=0.05)
    ball = _initial_walkers(centre, bounds, 4000, 1e-3, 7, None)
    assert np.std(ball[:, 0]) == pytest.approx(0.36, rel=0.05)


def test_laplace_covariance_is_the_tempered_curvature_with_the_priors():
    """The chain samples the chi-square divided by its scale, times the Gaussian priors: its covariance at the best
    point is ``(H / s + P)^-1``; a parameter without curvature or prior gets zero width (the small ball)."""
    curvature = np.array([[8.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    errors = SimpleNamespace(curvature=curvature.tolist())
    posterior = SimpleNamespace(chi2_scale=2.0, prior_precision=lambda: np.diag([0.0, 1.0, 0.0]))
    expected = np.linalg.inv(np.array([[4.0, 1.0], [1.0, 3.0]]))
    covariance = laplace_covariance(errors, posterior)
    assert covariance[:2, :2] == pytest.approx(expected)
    assert np.all(covariance[2] == 0.0) and np.all(covariance[:, 2] == 0.0)
    assert laplace_covariance(None, posterior) is None
