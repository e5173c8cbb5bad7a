"""Family errors: the families that extend a fit are maximised from its best point and their estimates, with Akaike
weights, widen the errors where a family the data cannot rule out moves them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kinms_core import ObsPars, family_errors
from kinms_core.family_errors import (
    akaike_weights,
    bic_criteria,
    combined_start,
    excess_variances,
    family_differences,
    family_terms,
    model_spread,
    weighted_maxima,
    within_spread,
)
from kinms_core.fit import noise_volume
from kinms_core.likelihood import FitData, LogPosterior, sandwich_at
from kinms_core.optimise import maximise
from kinms_core.parametric import GalaxyModel, ModelSpec
from kinms_core.settings import load_settings

OP = ObsPars(nx=48, ny=48, nv=24, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
TRUE = {"flux": 30.0, "pa": 120.0, "inc": 70.0, "xc": 0.0, "yc": 0.0, "vsys": 10.0, "sigma": 10.0}
TRUE |= {"scalerad": 4.0, "vflat": 160.0, "rturn": 2.0}
BOUNDS = {"flux": (1, 100), "pa": (60, 180), "inc": (20, 89), "xc": (-5, 5), "yc": (-5, 5), "vsys": (-50, 50)}
BOUNDS |= {"sigma": (1, 50), "scalerad": (1, 10), "vflat": (50, 400), "rturn": (0.5, 10)}
RMS = 0.004


def test_akaike_weights_and_the_spread_of_the_estimates():
    weights = akaike_weights({"fit": 100.0, "thick": 98.0, "radial": 120.0})
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["thick"] / weights["fit"] == pytest.approx(math.e)
    assert weights["radial"] < 1e-4
    spread = model_spread({"pa": 359.0, "inc": 50.0}, {"thick": {"pa": 1.0, "inc": 60.0}}, {"fit": 0.5, "thick": 0.5})
    assert spread["pa"] == pytest.approx(math.sqrt(0.5) * 2.0)  # 359 to 1 is 2 degrees
    assert spread["inc"] == pytest.approx(math.sqrt(0.5) * 10.0)


def test_bic_of_each_searched_model_prices_its_parameters_by_the_data_s_size():
    record = {"aic": {"fit": 100.0, "thick": 96.0}, "n_parameters": {"fit": 10.0, "thick": 11.0}}
    bic = bic_criteria(record, math.exp(6.0))  # ln N_eff = 6: each parameter costs 4 more than by AIC
    assert bic == pytest.approx({"fit": 140.0, "thick": 140.0})
    assert bic_criteria({"aic": record["aic"]}, 100.0) == {}  # no parameter counts (an older record)
    assert bic_criteria(record, math.nan) == {}


def test_a_family_s_shift_counts_beyond_what_its_own_freedom_explains():
    """Where a family's feature is absent, its shift from the fit is noise of the variance its extra freedom adds
    (Hausman 1978), which the within-model part holds: the between-model part keeps only the shift beyond it."""
    fit_widths = {"pa": 1.0, "vsys": 2.0}
    excess = excess_variances(fit_widths, {"radial": {"pa": 3.0, "vsys": 1.0}, "warp": {"pa": math.nan}})
    assert excess["radial"] == {"pa": 8.0, "vsys": 0.0}  # a narrower family adds nothing
    assert excess["warp"] == {"pa": 0.0, "vsys": 0.0}  # no usable width, nor the parameter: the fit's own
    weights = {"fit": 0.5, "radial": 0.5}
    within = {"radial": {"pa": 2.0, "vsys": 0.0}}  # within its extra freedom: sqrt(8) = 2.8 deg
    beyond = {"radial": {"pa": 4.0, "vsys": 3.0}}
    assert model_spread({"pa": 0.0, "vsys": 0.0}, within, weights, excess)["pa"] == 0.0
    spread = model_spread({"pa": 0.0, "vsys": 0.0}, beyond, weights, excess)
    assert spread["pa"] == pytest.approx(math.sqrt(0.5 * (16.0 - 8.0)))
    assert spread["vsys"] == pytest.approx(math.sqrt(0.5 * 9.0))
    # the record's terms: the spread so made, and the within-model part as before
    record = {"best": beyond, "aic": {"fit": 100.0, "radial": 100.0}, "widths": {"radial": {"pa": 3.0, "vsys": 1.0}}}
    terms = family_terms(record, {"pa": 0.0, "vsys": 0.0}, fit_widths)
    assert terms["spread"] == pytest.approx(spread)
    assert terms["within"]["pa"] == pytest.approx(math.sqrt(0.5 * 8.0)) and terms["within"]["vsys"] == 0.0


def test_the_families_own_widths_add_where_the_wider_ones_weigh():
    """The within-model part of the model-averaged variance, ``sum_k w_k sigma_k^2``, beyond the fit's own."""
    weights = {"fit": 0.5, "radial": 0.25, "thick": 0.25}
    widths = {"radial": {"pa": 4.0, "inc": 2.0}, "thick": {"pa": 1.0, "inc": 0.0}}
    within = within_spread({"pa": 1.0, "inc": 2.0, "vsys": 3.0}, widths, weights)
    assert within["pa"] == pytest.approx(math.sqrt(0.25 * (16.0 - 1.0)))
    assert within["inc"] == 0.0  # a width of 0 (a parameter at its bound) counts as the fit's
    assert within["vsys"] == 0.0  # no family has it apart from the fit
    # narrower families that weigh more leave the fit's errors as they are
    assert within_spread({"pa": 2.0}, {"thick": {"pa": 1.0}}, {"fit": 0.1, "thick": 0.9})["pa"] == 0.0


def test_a_combined_family_starts_from_both_features_shifts():
    """A ring moves nothing of the geometry but its surface brightness; an inflow turns the axis by 4 deg: the model
    with both starts with the turned axis and both features' own parameters."""
    fit = {"pa": 358.0, "inc": 60.0, "scalerad": 5.0}
    ring = {"pa": 358.0, "inc": 62.0}
    inflow = {"pa": 2.0, "inc": 60.0, "scalerad": 6.0, "vrad": -20.0}
    start = combined_start(fit, ring, inflow)
    assert start == pytest.approx({"pa": 362.0, "inc": 62.0, "scalerad": 6.0, "vrad": -20.0})


def _spread_of(
    spec: ModelSpec,
    z0: float,
    families: tuple[str, ...] = ("thick",),
    processes: int = 1,
    vrad: float = 0.0,
    rms: float = RMS,
    **truth: float,
) -> dict:
    clean = GalaxyModel(OP, spec, n_clouds=2**15, seed=3).cube({**TRUE, "z0": z0, "vrad": vrad, **truth})
    data = clean + rms * np.random.default_rng(2).standard_normal(OP.shape)
    fit_data = FitData(
        data=data,
        obspars=OP,
        rms=rms,
        n_detected=int((data > 3 * rms).sum()),
        guesses=TRUE,
        bounds=BOUNDS,
        mask=clean > rms,  # the emission: the noise volume is measured away from it
    )
    settings = load_settings({})
    posterior = LogPosterior(
        fit_data, settings.resolved(TRUE, BOUNDS), settings.spec, correction="none", n_clouds=2**13, seed=1
    )
    best, _ = maximise(posterior, posterior.guess, posterior.low, posterior.high, 1500)
    widths = sandwich_at(fit_data, posterior, best).standard_deviations
    return family_differences(
        fit_data,
        settings,
        posterior,
        best,
        noise_volume(fit_data),
        fit_widths=widths,
        max_evaluations=1000,
        families=families,
        processes=processes,
    ) | {"fit": posterior.values(best), "fit_widths": widths}


def test_a_thick_disc_fitted_as_a_thin_one_gains_the_thick_family_s_inclination():
    thick = _spread_of(ModelSpec(thickness="exponential"), z0=3.0)
    assert set(thick["best"]) == {"thick"}
    assert thick["weights"]["thick"] > thick["weights"]["fit"]  # the data prefer the thick disc
    moved = abs(thick["best"]["thick"]["inc"] - thick["fit"]["inc"])
    assert moved > 3.0
    # the shift counts beyond the variance that the thick family's own freedom adds (its width's excess)
    excess = max(thick["widths"]["thick"]["inc"] ** 2 - thick["fit_widths"]["inc"] ** 2, 0.0)
    assert excess < 0.5 * moved**2
    assert thick["spread"]["inc"] == pytest.approx(math.sqrt(thick["weights"]["thick"] * (moved**2 - excess)))
    # a thin disc: the thick family gains nothing and moves nothing
    thin = _spread_of(ModelSpec(), z0=0.0)
    assert thin["weights"]["fit"] > thin["weights"]["thick"]
    assert thin["spread"]["inc"] < 0.3 * thick["spread"]["inc"]


def test_families_maximised_in_worker_processes_are_those_maximised_in_turn():
    alone = _spread_of(ModelSpec(), z0=0.0, families=("radial", "sigma_linear"))
    parallel = _spread_of(ModelSpec(), z0=0.0, families=("radial", "sigma_linear"), processes=2)
    singles = {"radial", "sigma_linear"}
    assert singles <= set(parallel["best"])
    # a later round: the first round's best with the other feature, if that best beat the fit
    assert set(parallel["best"]) - singles == {f"{best}+{(singles - {best}).pop()}" for best in parallel["chosen"][:1]}
    assert parallel["best"] == alone["best"] and parallel["spread"] == alone["spread"]


def test_a_galaxy_with_two_features_is_described_by_the_family_with_both():
    """A thick disc with an inflow: each feature alone beats the thin disc, and the second round adds the other
    feature to the better one, which then carries the weight (and the estimates the errors are measured from)."""
    both = _spread_of(
        ModelSpec(thickness="exponential", motions="radial"), z0=3.0, vrad=-40.0, families=("thick", "radial")
    )
    assert both["aic"]["thick"] < both["aic"]["fit"] and both["aic"]["radial"] < both["aic"]["fit"]
    first = min(("thick", "radial"), key=both["aic"].__getitem__)
    combined = f"{first}+{({'thick', 'radial'} - {first}).pop()}"
    assert both["chosen"] == [first, combined]
    assert both["weights"][combined] > 0.9
    # each model's count of parameters: the fit's and one more per feature (a scale height, a radial speed)
    counted = both["n_parameters"]
    assert counted["thick"] == counted["radial"] == counted["fit"] + 1 and counted[combined] == counted["fit"] + 2
    assert counted["fit"] == len(both["fit"])
    assert both["best"][combined]["vrad"] == pytest.approx(-40.0, abs=10.0)
    assert abs(both["best"][combined]["inc"] - TRUE["inc"]) < abs(both["fit"]["inc"] - TRUE["inc"])
    # the fit's spread is measured from the combined family's estimates
    moved = abs(both["best"][combined]["inc"] - both["fit"]["inc"])
    assert both["spread"]["inc"] == pytest.approx(moved, rel=0.1)


@pytest.mark.parametrize("vrad", [-30.0, 30.0])
def test_the_radial_family_turns_the_kinematic_axis_back_to_the_disc_s(vrad):
    """A flow turns the kinematic axis that a disc without it fits; the radial family, started from that fit with
    flows of both signs (:func:`kinms_core.starts.start_values`), finds the disc's own position angle and the flow."""
    flow = _spread_of(ModelSpec(motions="radial"), z0=0.0, vrad=vrad, families=("radial",))
    assert abs(flow["fit"]["pa"] - TRUE["pa"]) > 5.0
    assert flow["best"]["radial"]["pa"] == pytest.approx(TRUE["pa"], abs=3.0)
    assert flow["best"]["radial"]["vrad"] == pytest.approx(vrad, abs=10.0)


def test_a_lopsided_disc_s_family_takes_back_the_systemic_velocity_and_centre_its_light_pulled():
    """A disc brighter on one side, fitted as symmetric, has its systemic velocity and centre pulled towards the
    bright side; the lopsided family finds the m = 1 mode and puts them back, and the errors gain the shift."""
    truth = {"m1_cos": 0.3, "m1_sin": 0.3}
    lopsided = _spread_of(ModelSpec(asymmetry="lopsided"), z0=0.0, families=("lopsided",), **truth)
    fit, best = lopsided["fit"], lopsided["best"]["lopsided"]
    assert lopsided["weights"]["lopsided"] > 0.99
    assert abs(fit["vsys"] - TRUE["vsys"]) > 3.0 * lopsided["fit_widths"]["vsys"]  # many sigma off
    assert abs(best["vsys"] - TRUE["vsys"]) < 0.5 * abs(fit["vsys"] - TRUE["vsys"])
    assert math.hypot(best["xc"], best["yc"]) < 0.5 * math.hypot(fit["xc"], fit["yc"])
    assert best["m1_cos"] == pytest.approx(0.3, abs=0.1) and best["m1_sin"] == pytest.approx(0.3, abs=0.1)
    # the errors gain the shift of each of the family's modes (the symmetric one, from the start without the m = 1
    # mode, weighs little), by its weight
    every, weights = weighted_maxima(lopsided)
    assert set(every) == {"lopsided", *(f"lopsided#{k + 1}" for k in range(len(lopsided["modes"].get("lopsided", []))))}
    assert sum(weights[key] for key in every) == pytest.approx(lopsided["weights"]["lopsided"])
    own = lopsided["fit_widths"]["vsys"]
    excess = max(lopsided["widths"]["lopsided"]["vsys"] ** 2 - own**2, 0.0)
    expected = math.sqrt(
        sum(weights[key] * max((every[key]["vsys"] - fit["vsys"]) ** 2 - excess, 0.0) for key in every)
    )
    assert lopsided["spread"]["vsys"] == pytest.approx(expected, rel=1e-9)
    assert lopsided["spread"]["vsys"] > 0.5 * abs(best["vsys"] - fit["vsys"])  # a real shift is kept
    # each mode moves the systemic velocity back towards the truth (here a second maximum 0.5 km/s short of the first)
    assert all((every[key]["vsys"] - fit["vsys"]) * (best["vsys"] - fit["vsys"]) > 0 for key in every)


def test_a_later_round_also_tries_the_features_that_did_not_help_alone(monkeypatch):
    """A feature may help only once another is modelled (an inflow beside a falling dispersion), so the second
    round adds every other feature to the first round's best, also one that did not help alone."""
    maximise_all = family_errors._maximise_all
    asked = []

    def lopsided_alone_does_not_help(fit_data, alternatives, arguments, processes):
        asked.append(set(alternatives))
        results = maximise_all(fit_data, alternatives, arguments, processes)
        if "lopsided" in results:
            values, _, widths, counted, _ = results["lopsided"]
            results["lopsided"] = (values, math.inf, widths, counted, [])
        return results

    monkeypatch.setattr(family_errors, "_maximise_all", lopsided_alone_does_not_help)
    thick = _spread_of(ModelSpec(thickness="exponential"), z0=3.0, families=("thick", "lopsided"))
    assert thick["chosen"][0] == "thick"
    assert asked[:2] == [{"thick", "lopsided"}, {"thick+lopsided"}]
    assert thick["weights"]["lopsided"] == 0.0


def test_a_family_s_other_maxima_are_modes_when_high_enough_and_apart():
    """Maxima within the AIC margin that lie, in some parameter, more than the separation in sandwich widths from the
    best and from each other are modes; one lower by more than the margin, or as near as a width, is not."""

    class _Quadratic:
        free_names = ["inc", "vsys"]
        free = free_names
        map_parameters = 0.0

        def chi2(self, theta: np.ndarray) -> float:
            return float(theta[1])  # the AIC of a point is its vsys (volume 1) plus 4

    widths = {"inc": 2.0, "vsys": 1.0}
    best = np.array([20.0, 0.0])
    maxima = [
        best,
        np.array([21.0, 0.5]),  # within a width of the best: the same mode
        np.array([60.0, 1.0]),  # 20 widths away in inc, 1 in AIC: a mode
        np.array([61.0, 2.0]),  # that mode again
        np.array([20.0, 9.0]),  # 9 widths away in vsys, 9 in AIC: a mode
        np.array([40.0, 11.0]),  # beyond the margin
    ]
    modes = family_errors._modes(_Quadratic(), maxima, widths, 1.0, family_errors.aic(0.0, 2, 1.0))
    assert [mode["values"] for mode in modes] == [{"inc": 60.0, "vsys": 1.0}, {"inc": 20.0, "vsys": 9.0}]
    assert [mode["aic"] for mode in modes] == [5.0, 13.0]
    # each mode weighs by its own AIC and the family's weight is theirs together
    record = {"best": {"thick": {"inc": 20.0, "vsys": 0.0}}, "aic": {"fit": 10.0, "thick": 4.0}}
    record["modes"] = {"thick": modes}
    every, weights = weighted_maxima(record)
    assert set(every) == {"thick", "thick#1", "thick#2"} and set(weights) == {"fit", "thick", "thick#1", "thick#2"}
    assert weights["thick#1"] / weights["thick"] == pytest.approx(math.exp(-0.5))
    assert weights["thick#2"] / weights["thick"] == pytest.approx(math.exp(-4.5))
    # a record of weights alone (no AICs) keeps them
    assert weighted_maxima({"best": {"thick": {}}, "weights": {"fit": 0.3, "thick": 0.7}})[1] == {
        "fit": 0.3,
        "thick": 0.7,
    }
