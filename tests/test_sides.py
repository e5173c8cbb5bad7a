"""Side errors: the approaching and the receding side fitted apart agree on a symmetric galaxy and tell a lopsided
one; the posterior samples gain the term in quadrature and keep their correlations."""

from __future__ import annotations

import numpy as np
import pytest

from kinms_core import ObsPars
from kinms_core.likelihood import FitData
from kinms_core.parametric import GalaxyModel, ModelSpec
from kinms_core.settings import load_settings
from kinms_core.sides import side_differences, side_masks, widen_samples

OP = ObsPars(nx=48, ny=48, nv=24, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
TRUE = {"flux": 30.0, "pa": 120.0, "inc": 55.0, "xc": 0.0, "yc": 0.0, "vsys": 10.0, "sigma": 10.0}
TRUE |= {"scalerad": 4.0, "vflat": 160.0, "rturn": 2.0}
RMS = 0.002
BOUNDS = {"flux": (1, 100), "pa": (60, 180), "inc": (20, 85), "xc": (-5, 5), "yc": (-5, 5), "vsys": (-50, 50)}
BOUNDS |= {"sigma": (1, 50), "scalerad": (1, 10), "vflat": (50, 400), "rturn": (0.5, 10)}


def _model(**values: float) -> np.ndarray:
    return GalaxyModel(OP, ModelSpec(), n_clouds=2**15, seed=3).cube({**TRUE, **values})


def _sides_of(data: np.ndarray) -> dict[str, dict[str, float]]:
    fit_data = FitData(data=data, obspars=OP, rms=RMS, n_detected=int((data > 3 * RMS).sum()))
    parameters = load_settings({}).resolved(TRUE, BOUNDS)
    return side_differences(fit_data, parameters, ModelSpec(), TRUE, n_clouds=2**13, seed=1, max_evaluations=1500)


def test_side_masks_split_the_disc_at_the_systemic_velocity():
    receding, approaching = side_masks(_model(), OP.velocities, TRUE["vsys"])
    assert receding.sum() > 50 and abs(int(receding.sum()) - int(approaching.sum())) < 0.1 * receding.sum()
    assert not (receding & approaching).any()
    # KinMS's PA (north through east) points to the receding side: at PA 120 that is east (smaller x: RA
    # increases to the left) and south (smaller y)
    y, x = np.indices(receding.shape)
    assert x[receding].mean() < x[approaching].mean() and y[receding].mean() < y[approaching].mean()


def test_sides_agree_on_a_symmetric_galaxy_and_tell_a_lopsided_one():
    rng = np.random.default_rng(5)
    noise = RMS * rng.standard_normal(OP.shape)
    symmetric = _sides_of(_model() + noise)
    # the receding side rotates 40 km/s faster than the approaching side
    receding, _ = side_masks(_model(), OP.velocities, TRUE["vsys"])
    lopsided_cube = np.where(receding[None], _model(vflat=180.0), _model(vflat=140.0)) + noise
    lopsided = _sides_of(lopsided_cube)
    assert set(symmetric["half_difference"]) == {"flux", "pa", "inc", "vsys", "sigma", "scalerad", "vflat", "rturn"}
    assert symmetric["half_difference"]["vflat"] < 4.0
    assert lopsided["receding"]["vflat"] > lopsided["approaching"]["vflat"]
    assert lopsided["half_difference"]["vflat"] == pytest.approx(20.0, abs=6.0)


def test_widened_samples_gain_the_term_in_quadrature_and_keep_correlations():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(20000)
    samples = np.column_stack([10 + a, 5 + 0.5 * a + 0.5 * rng.standard_normal(20000)])
    centre = np.median(samples, axis=0)
    low, high = np.array([-100.0, -100.0]), np.array([100.0, 100.0])
    wider = widen_samples(samples, centre, ["pa", "inc"], {"pa": 1.0}, low, high)
    p16, p84 = np.percentile(wider[:, 0], [16, 84])
    assert 0.5 * (p84 - p16) == pytest.approx(np.sqrt(2.0), rel=0.02)
    assert np.median(wider, axis=0) == pytest.approx(centre, abs=1e-9)
    assert np.array_equal(wider[:, 1], samples[:, 1])
    assert np.corrcoef(wider.T)[0, 1] == pytest.approx(np.corrcoef(samples.T)[0, 1], abs=1e-9)
    clipped = widen_samples(samples, centre, ["pa", "inc"], {"pa": 50.0}, np.array([9.0, -100.0]), high)
    assert clipped[:, 0].min() >= 9.0


def test_sides_of_a_data_surface_brightness_keep_the_whole_galaxy_s_gas():
    # each side's model keeps the gas of both sides (the whole cube's map): with one side's map alone vsys and the
    # rotation slid along their one-sided degeneracy (37 km/s in vsys on NGC 4047)
    rng = np.random.default_rng(5)
    data = _model() + RMS * rng.standard_normal(OP.shape)
    mask = data > 3 * RMS
    fit_data = FitData(data=data, obspars=OP, rms=RMS, n_detected=int(mask.sum()), mask=mask)
    spec = ModelSpec(surface_brightness="data")
    bounds = {"flux": (1, 100), "pa": (60, 180), "inc": (20, 85), "xc": (-5, 5), "yc": (-5, 5), "vsys": (-50, 50)}
    bounds |= {"sigma": (1, 50), "vflat": (50, 400), "rturn": (0.5, 10)}
    truth = {k: v for k, v in TRUE.items() if k != "scalerad"}
    parameters = load_settings({"model": {"surface_brightness": "data"}}).resolved(truth, bounds)
    sides = side_differences(fit_data, parameters, spec, truth, n_clouds=2**13, seed=1, max_evaluations=1500)
    half = sides["half_difference"]
    assert half["vsys"] < 5.0 and half["vflat"] < 10.0
    for side in ("receding", "approaching"):  # each side's model holds the whole flux, not its side's share
        assert sides[side]["flux"] == pytest.approx(TRUE["flux"], rel=0.15)


def test_the_sides_fitted_in_worker_processes_are_those_fitted_in_turn():
    data = _model() + RMS * np.random.default_rng(6).standard_normal(OP.shape)
    fit_data = FitData(data=data, obspars=OP, rms=RMS, n_detected=int((data > 3 * RMS).sum()))
    parameters = load_settings({}).resolved(TRUE, BOUNDS)
    common = {"n_clouds": 2**12, "seed": 1, "max_evaluations": 300}
    alone = side_differences(fit_data, parameters, ModelSpec(), TRUE, **common)
    parallel = side_differences(fit_data, parameters, ModelSpec(), TRUE, processes=2, **common)
    assert parallel == alone and set(parallel) == {"receding", "approaching", "half_difference"}
