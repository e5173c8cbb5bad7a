"""The optimiser's start points: a thick disc also starts up the valley of constant v sin i with a thicker disc, and
the best of several starts is the one kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kinms_core import ObsPars
from kinms_core.optimise import maximise_from
from kinms_core.parametric import GalaxyModel, ModelSpec
from kinms_core.starts import RADIAL_ANGLES, THICK_LADDER, start_values, start_vectors

VALUES = {"flux": 10.0, "pa": 100.0, "inc": 30.0, "vflat": 200.0, "rturn": 2.0, "z0": 0.4, "scalerad": 4.0}
BOUNDS = {"inc": (5.0, 89.0), "vflat": (10.0, 1000.0), "z0": (0.0, 8.0), "pa": (0.0, 360.0)}


def test_a_thin_disc_starts_only_from_its_guesses():
    assert start_values(ModelSpec(), VALUES, BOUNDS, length=4.0) == [VALUES]


def test_a_thick_disc_also_starts_higher_at_the_same_v_sin_i_and_thicker():
    starts = start_values(ModelSpec(thickness="exponential"), VALUES, BOUNDS, length=4.0)
    assert starts[0] == VALUES and len(starts) == 1 + len(THICK_LADDER)
    vsini = VALUES["vflat"] * math.sin(math.radians(VALUES["inc"]))
    for start, (step, height) in zip(starts[1:], THICK_LADDER, strict=True):
        assert start["inc"] == pytest.approx(VALUES["inc"] + step)
        assert start["vflat"] * math.sin(math.radians(start["inc"])) == pytest.approx(vsini)
        assert start["z0"] == pytest.approx(height * 4.0)
        assert {k: start[k] for k in ("pa", "flux", "rturn")} == {k: VALUES[k] for k in ("pa", "flux", "rturn")}
    # an inclination near its upper bound stays inside it; a fixed one (no bounds) is not moved at all
    near_edge = start_values(ModelSpec(thickness="exponential"), {**VALUES, "inc": 80.0}, BOUNDS, length=4.0)
    assert [s["inc"] for s in near_edge] == [80.0, 89.0, 89.0]
    # without the emission's scale length the start's own scale length sets the scale heights
    own = start_values(ModelSpec(thickness="exponential"), VALUES, BOUNDS, length=None)
    assert [s["z0"] for s in own[1:]] == [height * VALUES["scalerad"] for _, height in THICK_LADDER]
    fixed = {k: v for k, v in BOUNDS.items() if k != "inc"}
    assert start_values(ModelSpec(thickness="exponential"), VALUES, fixed, length=4.0) == [VALUES]


def test_a_radial_flow_also_starts_from_an_inflow_and_an_outflow_with_the_axis_turned_back():
    bounds = {**BOUNDS, "vrad": (-100.0, 100.0)}
    starts = start_values(ModelSpec(motions="radial"), {**VALUES, "vrad": 0.0}, bounds, length=4.0)
    assert len(starts) == 1 + len(RADIAL_ANGLES)
    for start, angle in zip(starts[1:], RADIAL_ANGLES, strict=True):
        phi = math.radians(angle)
        assert start["vrad"] == pytest.approx(VALUES["vflat"] * math.tan(phi))
        twist = math.degrees(math.atan(math.tan(phi) * math.cos(math.radians(VALUES["inc"]))))
        assert start["pa"] == pytest.approx(VALUES["pa"] + twist)
    assert {math.copysign(1.0, s["vrad"]) for s in starts[1:]} == {-1.0, 1.0}
    # a fixed flow (no bounds) is not started elsewhere
    assert start_values(ModelSpec(motions="radial"), {**VALUES, "vrad": 0.0}, BOUNDS, length=4.0) == [
        {**VALUES, "vrad": 0.0}
    ]


@pytest.mark.parametrize("vrad", [-30.0, 30.0])
def test_the_flowless_disc_s_position_angle_is_turned_the_way_the_starts_turn_back(vrad):
    """The starts' sign: the model's flow with vrad > 0 is best matched without a flow at a smaller position angle,
    so a start with vrad > 0 lies at a larger one than the flowless fit's."""
    op = ObsPars(nx=48, ny=48, nv=24, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
    truth = {"flux": 30.0, "pa": 120.0, "inc": 45.0, "xc": 0.0, "yc": 0.0, "vsys": 10.0, "sigma": 10.0}
    truth |= {"scalerad": 4.0, "vflat": 160.0, "rturn": 2.0}
    data = GalaxyModel(op, ModelSpec(motions="radial"), n_clouds=2**15, seed=3).cube({**truth, "vrad": vrad})
    flowless = GalaxyModel(op, ModelSpec(), n_clouds=2**15, seed=3)
    angles = np.arange(100.0, 141.0, 1.0)
    chi2 = [np.sum((flowless.cube({**truth, "pa": pa}) - data) ** 2) for pa in angles]
    kinematic = angles[int(np.argmin(chi2))]
    assert math.copysign(1.0, truth["pa"] - kinematic) == math.copysign(1.0, vrad)
    assert abs(kinematic - truth["pa"]) > 3.0


def test_the_best_of_several_starts_is_kept():
    def two_peaks(x: np.ndarray) -> float:  # a low peak at 0.2 and a high one at 0.8
        return max(-((x[0] - 0.2) ** 2) / 0.005, 5.0 - (x[0] - 0.8) ** 2 / 0.005)

    low, high = np.array([0.0]), np.array([1.0])
    best, calls, index = maximise_from(two_peaks, [np.array([0.15]), np.array([0.9])], low, high, 500)
    assert index == 1 and best[0] == pytest.approx(0.8, abs=1e-3) and calls > 2
    alone, _, _ = maximise_from(two_peaks, [np.array([0.15])], low, high, 500)
    assert alone[0] == pytest.approx(0.2, abs=1e-3)  # from the first start alone it stays on the low peak


def test_start_vectors_are_the_posterior_s_free_parameters():
    from kinms_core import ObsPars
    from kinms_core.likelihood import FitData, LogPosterior
    from kinms_core.settings import load_settings

    op = ObsPars(nx=32, ny=32, nv=16, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
    fit_data = FitData(data=np.zeros(op.shape), obspars=op, rms=1.0, n_detected=10)
    guesses = {"flux": 10.0, "xc": 0.0, "yc": 0.0, "vsys": 0.0, "pa": 100.0, "inc": 30.0, "vflat": 200.0}
    guesses |= {"scalerad": 4.0, "rturn": 2.0, "sigma": 10.0}
    bounds = {name: (value - 50.0, value + 50.0) for name, value in guesses.items()}
    bounds |= {"inc": (5.0, 89.0), "scalerad": (0.5, 16.0), "vflat": (20.0, 500.0), "sigma": (0.0, 100.0)}
    settings = load_settings({"model": {"thickness": "exponential"}, "parameters": {"flux": {"fixed": True}}})
    posterior = LogPosterior(fit_data, settings.resolved(guesses, bounds), settings.spec, n_clouds=2**10, seed=0)
    vectors = start_vectors(posterior, posterior.guess, length=4.0)
    assert len(vectors) == 3 and all(v.shape == posterior.guess.shape for v in vectors)
    inc = posterior.free_names.index("inc")
    assert [v[inc] for v in vectors] == [30.0, 45.0, 60.0]
    assert "flux" not in posterior.free_names  # a fixed parameter is not in the vectors
