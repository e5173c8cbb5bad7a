"""The optimiser's start points: a thick disc also starts up the valley of constant v sin i with a thicker disc, and
the best of several starts is the one kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kinms_core import ObsPars
from kinms_core.optimise import maximise_from
from kinms_core.parametric import GalaxyModel, ModelSpec
from kinms_core.starts import (
    LOPSIDED_AMPLITUDE,
    LOPSIDED_PHASES,
    RADIAL_ANGLES,
    THICK_LADDER,
    start_values,
    start_vectors,
)

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


def _light_centroid(cube: np.ndarray) -> np.ndarray:
    moment0 = cube.sum(axis=0)
    y, x = np.indices(moment0.shape)
    return np.array([np.sum(x * moment0), np.sum(y * moment0)]) / moment0.sum()


def _velocity_at(cube: np.ndarray, velocities: np.ndarray, pixel: np.ndarray) -> float:
    """The flux-weighted velocity of the spectrum interpolated at a (fractional) pixel ``(x, y)``."""
    x0, y0 = np.floor(pixel).astype(int)
    fx, fy = pixel - np.floor(pixel)
    spectrum = (
        (1 - fx) * (1 - fy) * cube[:, y0, x0]
        + fx * (1 - fy) * cube[:, y0, x0 + 1]
        + (1 - fx) * fy * cube[:, y0 + 1, x0]
        + fx * fy * cube[:, y0 + 1, x0 + 1]
    )
    return float(np.sum(spectrum * velocities) / np.sum(spectrum))


@pytest.mark.parametrize(("pa", "inc"), [(100.0, 30.0), (235.0, 70.0)])
def test_a_lopsided_disc_also_starts_with_m1_modes_about_a_centre_that_keeps_the_light_where_it_is(pa, inc):
    """Each start's m = 1 mode moves the light's centroid by ``A <r> / 2``; its centre is moved back so that the
    model's moment-0 centroid stays that of the symmetric disc, which a symmetric fit has put where the light is, and
    its systemic velocity so that the velocity seen there stays the symmetric disc's."""
    op = ObsPars(nx=64, ny=64, nv=32, cellsize=1.0, dv=20.0, beam=(3.0, 3.0, 0.0))
    values = {"flux": 30.0, "pa": pa, "inc": inc, "xc": 1.0, "yc": -2.0, "vsys": 0.0, "sigma": 10.0}
    values |= {"scalerad": 4.0, "vflat": 200.0, "rturn": 2.0, "m1_cos": 0.0, "m1_sin": 0.0}
    bounds = {"m1_cos": (-1.0, 1.0), "m1_sin": (-1.0, 1.0), "xc": (-20.0, 20.0), "yc": (-20.0, 20.0)}
    bounds |= {"vsys": (-300.0, 300.0)}
    spec = ModelSpec(asymmetry="lopsided")
    starts = start_values(spec, values, bounds, length=None)
    assert starts[0] == values and len(starts) == 1 + len(LOPSIDED_PHASES)
    model = GalaxyModel(op, spec, n_clouds=2**18, seed=1)
    velocities = values["vsys"] + op.dv * (np.arange(op.nv) - op.nv // 2)
    symmetric_cube = model.cube(values)
    symmetric = _light_centroid(symmetric_cube)
    seen = _velocity_at(symmetric_cube, velocities, symmetric)
    turned = 0
    for start, phase in zip(starts[1:], LOPSIDED_PHASES, strict=True):
        amplitude = math.hypot(start["m1_cos"], start["m1_sin"])
        assert amplitude == pytest.approx(LOPSIDED_AMPLITUDE)
        assert math.degrees(math.atan2(start["m1_sin"], start["m1_cos"])) % 360.0 == pytest.approx(phase)
        moved = math.hypot(start["xc"] - values["xc"], start["yc"] - values["yc"])
        assert moved > 0.3  # A <r> / 2 = 1.2 arcsec in the disc, foreshortened by cos(inc) across the nodes
        cube = model.cube(start)
        shift = _light_centroid(cube) - symmetric
        assert np.hypot(*shift) < 0.15 * moved, (phase, shift, moved)
        moved_vsys = start["vsys"] - values["vsys"]
        if abs(moved_vsys) > 5.0:  # a mode along the nodes moves the systemic velocity
            turned += 1
            # with it the velocity seen where the light is stays closer to the symmetric disc's than with the centre
            # moved alone (by half at least: the beam flattens the velocity gradient that the move undoes)
            change = _velocity_at(cube, velocities, symmetric) - seen
            alone = _velocity_at(model.cube({**start, "vsys": values["vsys"]}), velocities, symmetric) - seen
            assert abs(change) < 0.5 * abs(alone), (phase, moved_vsys, change, alone)
    assert turned == 2
    # without a free centre, or without a length scale, no such start
    fixed_centre = {k: v for k, v in bounds.items() if k not in ("xc", "yc")}
    assert start_values(spec, values, fixed_centre, length=None) == [values]
    no_length = {k: v for k, v in values.items() if k != "scalerad"}
    assert start_values(spec, no_length, bounds, length=None) == [no_length]


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
