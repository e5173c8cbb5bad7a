"""Model families: every family's parameters are named, united and allowed by the sheet schema; families reduce to
the default where their extra parameters vanish; the surface brightness from the data reproduces the galaxy it was
taken from, and only with the right geometry."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from kinms_core import ObsPars
from kinms_core.errors import SettingsError
from kinms_core.likelihood import FitData, LogPosterior, model_noise_chi2
from kinms_core.optimise import maximise
from kinms_core.parametric import (
    ASYMMETRIES,
    DISPERSIONS,
    MOTIONS,
    SURFACE_BRIGHTNESS,
    THICKNESS,
    WARPS,
    GalaxyModel,
    ModelSpec,
    all_parameter_names,
    unit_of,
)
from kinms_core.settings import load_settings
from kinms_core.surface import surface_map

REPO = Path(__file__).resolve().parents[1]
OP = ObsPars(nx=48, ny=48, nv=24, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
BASE = {"flux": 30.0, "pa": 120.0, "inc": 55.0, "xc": 1.0, "yc": -1.0, "vsys": 10.0, "sigma": 10.0}
BASE |= {"scalerad": 4.0, "vflat": 200.0, "rturn": 2.0}


def _cube(spec: ModelSpec, **values: float) -> np.ndarray:
    model = GalaxyModel(OP, spec, n_clouds=2**15, seed=3)
    return model.cube({**BASE, **values})


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_every_parameter_has_a_unit_and_a_sheet_column():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "sheet.schema.yaml").read_text())
    patterns = [re.compile(p) for p in schema["patternProperties"]]
    for name in (*all_parameter_names(), "vrot_3"):
        unit_of(name)
        for field in ("guess", "min", "max", "fixed", "true"):
            assert any(p.match(f"{name}_{field}") for p in patterns), f"{name}_{field} not allowed by the sheet schema"


@pytest.mark.parametrize(
    "model",
    [{"surface_brightness": s} for s in SURFACE_BRIGHTNESS if s != "data"]
    + [{"warp": w} for w in WARPS]
    + [{"thickness": t} for t in THICKNESS]
    + [{"dispersion": d} for d in DISPERSIONS]
    + [{"motions": m} for m in MOTIONS]
    + [{"asymmetry": a} for a in ASYMMETRIES],
)
def test_every_family_has_guesses_and_bounds_and_conserves_flux(model):
    guesses = {"flux": 30, "xc": 0, "yc": 0, "vsys": 0, "pa": 100, "inc": 50, "vflat": 180, "scalerad": 4}
    guesses |= {"rturn": 2, "sigma": 10}
    bounds = {"scalerad": (0.1, 24.0), "sigma": (0.0, 100.0), "vflat": (10.0, 1000.0)}
    bounds |= {name: (value - 50.0, value + 50.0) for name, value in guesses.items() if name not in bounds}
    settings = load_settings({"model": model}).for_data(guesses)
    parameters = settings.resolved(guesses, bounds)
    values = {p.name: p.guess for p in parameters}
    assert all(p.min <= p.guess <= p.max for p in parameters if not p.fixed)
    cube = GalaxyModel(OP, settings.spec, n_clouds=2**14, seed=1).cube(values)
    psf_sum = GalaxyModel(OP, settings.spec, n_clouds=2**14, seed=1).cube_model.psf_sum
    assert cube.sum() * OP.dv / psf_sum == pytest.approx(30.0, rel=1e-9)


def test_families_reduce_to_the_default_where_their_parameters_vanish():
    default = _cube(ModelSpec())
    zero = {
        ModelSpec(warp="linear", warp_radius=6.0): {"pa_grad": 0.0, "inc_grad": 0.0},
        ModelSpec(warp="rings", warp_radii=(4.0, 8.0, 12.0)): {f"d{a}_{k}": 0.0 for a in ("pa", "inc") for k in (1, 2)},
        ModelSpec(dispersion="linear"): {"sigma_grad": 0.0},
        ModelSpec(thickness="exponential"): {"z0": 0.0},
        ModelSpec(motions="radial"): {"vrad": 0.0},
        ModelSpec(motions="bisymmetric"): {"v2t": 0.0, "v2r": 0.0, "phib": 30.0},
        ModelSpec(asymmetry="lopsided"): {"m1_cos": 0.0, "m1_sin": 0.0},
        ModelSpec(surface_brightness="exponential_hole"): {"hole_radius": 0.0},
        ModelSpec(surface_brightness="exponential_ring"): {"ring_radius": 8.0, "ring_width": 2.0, "ring_fraction": 0.0},
    }
    for spec, values in zero.items():
        np.testing.assert_allclose(_cube(spec, **values), default, rtol=1e-9, atol=1e-12, err_msg=spec.label)
    # a Sersic disc of n = 1 is an exponential whose half-light radius is 1.678 scale lengths
    sersic = _cube(ModelSpec(surface_brightness="sersic"), reff=1.678 * BASE["scalerad"], sersic_n=1.0)
    assert _rel(sersic, default) < 0.01
    # an exponential+ring that is all ring is the Gaussian ring
    ring = {"ring_radius": 8.0, "ring_width": 2.0}
    all_ring = _cube(ModelSpec(surface_brightness="exponential_ring"), ring_fraction=1.0, **ring)
    assert _rel(all_ring, _cube(ModelSpec(surface_brightness="gaussian_ring"), **ring)) < 1e-9


def test_non_circular_families_change_the_cube():
    default = _cube(ModelSpec())
    assert _rel(_cube(ModelSpec(motions="radial"), vrad=30.0), default) > 0.1
    assert _rel(_cube(ModelSpec(warp="linear", warp_radius=0.0), pa_grad=2.0, inc_grad=0.0), default) > 0.1
    assert _rel(_cube(ModelSpec(dispersion="linear"), sigma_grad=2.0), default) > 0.1
    assert _rel(_cube(ModelSpec(thickness="exponential"), z0=2.0), default) > 0.1
    model = GalaxyModel(OP, ModelSpec(warp="linear", warp_radius=10.0), n_clouds=2**10)
    pa, inc = model.geometry({**BASE, "pa_grad": 2.0, "inc_grad": 1.0}, np.array([0.0, 10.0, 50.0]))
    np.testing.assert_allclose(pa, [100.0, 120.0, 200.0])  # pa and inc hold at the pivot, 10"
    np.testing.assert_allclose(inc, [45.0, 55.0, 90.0])  # held at edge-on


def test_surface_from_the_data_reproduces_its_galaxy_only_with_its_geometry():
    truth = _cube(ModelSpec())
    surface = surface_map(truth, np.ones(truth.shape, dtype=bool), OP)
    data_model = GalaxyModel(OP, ModelSpec(surface_brightness="data"), n_clouds=2**15, seed=3, surface=surface)
    values = {k: v for k, v in BASE.items() if k != "scalerad"}
    right = data_model.cube(values)
    assert _rel(right, truth) < 0.08
    # the kinematics are deprojected with the trial geometry: a wrong PA or inclination misses the data
    assert _rel(data_model.cube({**values, "pa": 140.0}), truth) > 2 * _rel(right, truth)
    assert _rel(data_model.cube({**values, "inc": 35.0}), truth) > 2 * _rel(right, truth)
    # deconvolving the beam matters: without it the model is the map smoothed by the beam twice
    smoothed = surface_map(truth, np.ones(truth.shape, dtype=bool), OP, iterations=0)
    blurred = GalaxyModel(OP, ModelSpec(surface_brightness="data"), n_clouds=2**15, seed=3, surface=smoothed)
    assert _rel(blurred.cube(values), truth) > _rel(right, truth)


def test_data_surface_brightness_cannot_be_warped():
    with pytest.raises(ValueError, match="cannot go with a warp or a thickness"):
        load_settings({"model": {"surface_brightness": "data", "warp": "linear"}})
    with pytest.raises(ValueError, match="cannot go with an asymmetry"):
        load_settings({"model": {"surface_brightness": "data", "asymmetry": "lopsided"}})


def test_a_lopsided_disc_brightens_the_half_its_m1_mode_points_to_by_the_mode_s_share():
    """Half a disc holds ``pi + 2 a`` of the ``2 pi`` azimuth-integrated light where ``1 + a cos(theta)`` peaks:
    ``m1_cos > 0`` brightens the approaching half (channels below vsys), ``m1_sin`` the half the radial term's
    ``sin(theta)`` points to, and neither changes the disc's velocities."""
    spec = ModelSpec(asymmetry="lopsided")
    assert spec.parameter_names[-2:] == ("m1_cos", "m1_sin") and spec.label == "lopsided"
    assert "asymmetry" not in ModelSpec().record() and ModelSpec.from_record(spec.record()) == spec
    face = {**BASE, "sigma": 0.0, "xc": 0.0, "yc": 0.0, "vsys": 0.0}
    model = GalaxyModel(OP, spec, n_clouds=2**15, seed=3)
    velocity = (np.arange(OP.nv) - OP.nv / 2) * OP.dv

    def approaching_share(values: dict[str, float]) -> float:
        spectrum = model.cube(values, clean=True).sum(axis=(1, 2))
        return float(spectrum[velocity < 0].sum() / spectrum[velocity != 0].sum())

    a = 0.4
    assert approaching_share({**face, "m1_cos": 0.0, "m1_sin": 0.0}) == pytest.approx(0.5, abs=0.01)
    assert approaching_share({**face, "m1_cos": a, "m1_sin": 0.0}) == pytest.approx(
        (np.pi + 2 * a) / (2 * np.pi), abs=0.01
    )
    assert approaching_share({**face, "m1_cos": -a, "m1_sin": 0.0}) == pytest.approx(
        (np.pi - 2 * a) / (2 * np.pi), abs=0.01
    )
    # along the minor axis it moves light, not velocity: the same split of the spectrum as the symmetric disc
    assert approaching_share({**face, "m1_cos": 0.0, "m1_sin": a}) == pytest.approx(0.5, abs=0.01)
    # and a radial flow's sin(theta) side is the one m1_sin brightens: more light at the flow's line-of-sight sign
    flow = GalaxyModel(OP, ModelSpec(asymmetry="lopsided", motions="radial"), n_clouds=2**15, seed=3)
    values = {**face, "vflat": 0.0, "rturn": 2.0, "vrad": 60.0, "m1_cos": 0.0}
    symmetric = flow.cube({**values, "m1_sin": 0.0}, clean=True).sum(axis=(1, 2))
    lopsided = flow.cube({**values, "m1_sin": a}, clean=True).sum(axis=(1, 2))
    assert lopsided[velocity > 0].sum() > 1.2 * symmetric[velocity > 0].sum()


def test_a_warp_pivots_about_the_emission_s_half_light_radius_unless_given():
    guesses = {"scalerad": 5.0}
    warped = load_settings({"model": {"warp": "linear"}})
    assert warped.spec.warp_radius is None
    assert warped.for_data(guesses).spec.warp_radius == pytest.approx(1.678 * 5.0)
    given = load_settings({"model": {"warp": "linear", "warp_radius": 12.0}})
    assert given.for_data(guesses).spec.warp_radius == 12.0
    assert load_settings({}).for_data(guesses).spec.warp_radius is None  # no warp, no pivot
    with pytest.raises(SettingsError, match="warp_radius"):
        load_settings({"model": {"warp": "linear", "warp_radius": -1.0}})
    with pytest.raises(ValueError, match="needs warp_radius"):
        GalaxyModel(OP, warped.spec, n_clouds=2**10).geometry({**BASE, "pa_grad": 1.0, "inc_grad": 0.0})


def test_spec_records_keep_unwarped_fits_as_they_were_and_read_old_warps_as_centred():
    assert "warp_radius" not in ModelSpec().record()  # unwarped chains of earlier releases still resume
    record = ModelSpec(warp="linear", warp_radius=8.0).record()
    assert ModelSpec.from_record(record) == ModelSpec(warp="linear", warp_radius=8.0)
    # a warp recorded before the pivot existed was fitted about the centre
    old = {k: v for k, v in record.items() if k != "warp_radius"}
    assert ModelSpec.from_record(old).warp_radius == 0.0


def test_a_ring_wise_warp_turns_between_its_radii_and_is_flat_inside_and_beyond():
    spec = ModelSpec(warp="rings", warp_radii=(10.0, 20.0, 30.0))
    assert spec.parameter_names[-4:] == ("dpa_1", "dpa_2", "dinc_1", "dinc_2") and spec.label == "warp_rings"
    turns = {"dpa_1": 10.0, "dpa_2": 30.0, "dinc_1": -5.0, "dinc_2": 40.0}
    pa, inc = GalaxyModel(OP, spec, n_clouds=2**10).geometry({**BASE, **turns}, np.array([0.0, 10.0, 15.0, 30.0, 50.0]))
    np.testing.assert_allclose(pa, [120.0, 120.0, 125.0, 150.0, 150.0])
    np.testing.assert_allclose(inc, [55.0, 55.0, 52.5, 90.0, 90.0])  # held at edge-on
    # auto radii: 1, 2 and 3 half-light radii, so a sheet or catalogue knows the columns before the data
    auto = load_settings({"model": {"warp": "rings"}})
    assert auto.spec.parameter_names == spec.parameter_names
    assert auto.for_data({"scalerad": 2.0}).spec.warp_radii == pytest.approx((3.356, 6.712, 10.068))
    # ... scaled down to end where the signal mask does, when it ends sooner: a turn beyond the gas measures nothing
    assert auto.for_data({"scalerad": 2.0}, 12.0).spec.warp_radii == pytest.approx((3.356, 6.712, 10.068))
    assert auto.for_data({"scalerad": 2.0}, 9.0).spec.warp_radii == pytest.approx((3.0, 6.0, 9.0))
    given = load_settings({"model": {"warp": "rings", "warp_radii": [5, 10, 15, 20]}})
    assert given.spec.parameter_names[-2:] == ("dinc_2", "dinc_3")
    with pytest.raises(SettingsError, match="warp_radii"):
        load_settings({"model": {"warp": "rings", "warp_radii": [10, 5]}})
    assert ModelSpec.from_record(spec.record()) == spec and "warp_radii" not in ModelSpec().record()


def test_a_ring_wise_warp_is_recovered_from_a_mock_made_with_it():
    # the matching generator: a disc whose outer PA turns by 25 deg and whose inclination rises by 15 deg
    spec = ModelSpec(warp="rings", warp_radii=(6.0, 12.0, 18.0))
    truth = {**BASE, "scalerad": 6.0, "dpa_1": 10.0, "dpa_2": 25.0, "dinc_1": 5.0, "dinc_2": 15.0}
    rng = np.random.default_rng(4)
    clean = GalaxyModel(OP, spec, n_clouds=2**15, seed=3).cube(truth)
    rms = 0.02 * clean.max()
    data = clean + rms * rng.standard_normal(clean.shape)
    fit_data = FitData(data=data, obspars=OP, rms=rms, n_detected=int((data > 3 * rms).sum()))
    bounds = {name: (value - 30.0, value + 30.0) for name, value in truth.items()}
    bounds |= {"flux": (10.0, 60.0), "inc": (20.0, 85.0), "sigma": (2.0, 40.0), "scalerad": (2.0, 12.0)}
    bounds |= {"xc": (-4.0, 4.0), "yc": (-4.0, 4.0), "vflat": (100.0, 300.0), "rturn": (0.5, 6.0)}
    # the search starts at half the turns: from an unwarped start Nelder-Mead needed 8000-15000 evaluations here
    half = {**truth, **{name: 0.5 * truth[name] for name in ("dpa_1", "dpa_2", "dinc_1", "dinc_2")}}
    parameters = load_settings({"model": {"warp": "rings", "warp_radii": [6, 12, 18]}}).resolved(half, bounds)
    posterior = LogPosterior(fit_data, parameters, spec, correction="none", n_clouds=2**14, seed=1)
    best, _ = maximise(posterior, posterior.guess, posterior.low, posterior.high, 4000)
    found = posterior.values(best)
    assert found["dpa_2"] == pytest.approx(25.0, abs=4.0) and found["dinc_2"] == pytest.approx(15.0, abs=6.0)
    assert found["pa"] == pytest.approx(120.0, abs=3.0)


def test_the_data_surface_brightness_s_monte_carlo_noise_falls_as_its_cloudlets_grow():
    # each sky cloudlet's velocity deviate comes from its own draw: paired with the model's deviates (ordered by
    # another sequence) a pixel's cloudlets moved together and the noise grew with the cloudlets
    truth = _cube(ModelSpec())
    surface = surface_map(truth, truth > 0.01 * truth.max(), OP)
    spec, values = ModelSpec(surface_brightness="data"), {k: v for k, v in BASE.items() if k != "scalerad"}
    noise = np.full(OP.shape, 1e-3 * truth.max())

    def model_noise(n: int) -> float:
        pair = [GalaxyModel(OP, spec, n_clouds=n, seed=s, surface=surface) for s in (0, 1)]
        return model_noise_chi2(*pair, values, noise)

    coarse, fine = model_noise(2**14), model_noise(2**17)
    assert fine < coarse / 8  # as 1/n or faster (17x here; 4x, and rising beyond 2^16, with the model's deviates)


def test_a_map_from_the_data_is_priced_by_its_beams_and_a_parametric_disc_is_not():
    truth = _cube(ModelSpec())
    mask = np.broadcast_to(truth > 0.05 * truth.max(), truth.shape)
    fit_data = FitData(data=truth, obspars=OP, rms=1e-3, n_detected=int(mask.sum()), mask=mask)
    guesses = {**BASE, "scalerad": 6.0, "vflat": 200.0, "rturn": 2.0}
    bounds = {name: (value - 50.0, value + 50.0) for name, value in guesses.items()}
    for surface, expected in (("exponential", 0.0), ("data", mask.any(axis=0).sum() / OP.beam_area_pixels)):
        settings = load_settings({"model": {"surface_brightness": surface}})
        posterior = LogPosterior(fit_data, settings.resolved(guesses, bounds), settings.spec, n_clouds=2**12, seed=1)
        assert posterior.map_parameters == pytest.approx(expected)
    assert expected > 10  # the disc covers tens of 4-pixel beams
