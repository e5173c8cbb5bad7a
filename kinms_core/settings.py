"""Fit settings: the YAML keys shared by ``kinms-core fit`` and the survey config, validated by a JSON schema.

```yaml
model: {surface_brightness: exponential, rotation_curve: arctan}
parameters:            # every parameter: guess (number or auto), min, max (number or auto), fixed, prior
  inc: {guess: auto, min: 5, max: 89}
  flux: {guess: 30, fixed: true}
  vflat: {guess: auto, min: 20, max: 500, prior: {gaussian: [200, 50]}}
fit:
  errors: robust              # robust (sandwich: measured noise correlation and model mismatch) | scaled
  # chi2_correction: detected # scaled only: detected | all | none, RMS x (2N)^(1/4) (the seed tutorial's)
  # noise_correlation: beam   # scaled only: beam | none, RMS x sqrt(beam area in pixels)
  nwalkers: 24
  max_steps: 5000
  seed: 1
```

Parameters not listed take ``guess: auto, min: auto, max: auto``: the ingestion's first guesses and data-derived
bounds. Unknown keys, guesses outside their bounds and ``min >= max`` are errors naming the key.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .cells import as_bool
from .errors import MissingInputError, SettingsError
from .parametric import (
    ASYMMETRIES,
    AUTO_WARP_RADII,
    DISPERSIONS,
    HALF_LIGHT_PER_SCALE,
    MOTIONS,
    ROTATION_CURVES,
    SURFACE_BRIGHTNESS,
    THICKNESS,
    WARPS,
    ModelSpec,
)

__all__ = [
    "DEFAULT_WALKERS",
    "OVERRIDE_FIELDS",
    "SETTINGS_SCHEMA",
    "FitOptions",
    "FitSettings",
    "Parameter",
    "apply_overrides",
    "load_settings",
    "walker_count",
]

# Cloudlets of a fit's model: its Monte-Carlo error (0.6% relative L2 on the tutorial cube, half of KinMS's default)
# is far below a cube's noise, and it costs half of the 2^17 of a stand-alone model (benchmarks/model_speed.py).
FIT_CLOUDS = 2**15
# Most cloudlets a fit may ask for: every cloudlet costs tens of bytes in each worker process, and far fewer already
# make the model's Monte-Carlo noise negligible; more is a typo (1e10) that would exhaust the machine's memory.
MAX_CLOUDS = 2**24
# Most walkers: the ensemble's cost grows with them and emcee needs only a few times the free parameters.
MAX_WALKERS = 4096

_NUMBER_OR_AUTO = {"oneOf": [{"type": "number"}, {"const": "auto"}]}

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "kinms_core fit settings",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "model": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "surface_brightness": {"enum": sorted(SURFACE_BRIGHTNESS), "default": "exponential"},
                "rotation_curve": {"enum": sorted(ROTATION_CURVES), "default": "arctan"},
                "warp": {"enum": sorted(WARPS), "default": "none"},
                "thickness": {"enum": sorted(THICKNESS), "default": "thin"},
                "dispersion": {"enum": sorted(DISPERSIONS), "default": "constant"},
                "motions": {"enum": sorted(MOTIONS), "default": "none"},
                "asymmetry": {"enum": sorted(ASYMMETRIES), "default": "none"},
                "ring_radii": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2},
                "warp_radius": {"oneOf": [{"type": "number", "minimum": 0}, {"const": "auto"}], "default": "auto"},
                "warp_radii": {
                    "oneOf": [
                        {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2},
                        {"const": "auto"},
                    ],
                    "default": "auto",
                },
                "n_clouds": {"oneOf": [{"type": "integer", "minimum": 1024, "maximum": MAX_CLOUDS}, {"const": "auto"}]},
            },
        },
        "parameters": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "guess": _NUMBER_OR_AUTO,
                    "min": _NUMBER_OR_AUTO,
                    "max": _NUMBER_OR_AUTO,
                    "fixed": {"type": "boolean"},
                    "prior": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["gaussian"],
                        "properties": {
                            "gaussian": {
                                "type": "array",
                                "items": {"type": "number"},
                                "minItems": 2,
                                "maxItems": 2,
                            }
                        },
                    },
                },
            },
        },
        "fit": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "errors": {"enum": ["robust", "scaled"]},
                "side_errors": {"type": "boolean"},
                "family_errors": {"type": "boolean"},
                "chi2_correction": {"enum": ["detected", "all", "none"]},
                "noise_correlation": {"enum": ["beam", "none"]},
                "nwalkers": {"type": "integer", "minimum": 4, "maximum": MAX_WALKERS},
                "max_steps": {"type": "integer", "minimum": 1},
                "min_steps": {"type": "integer", "minimum": 0},
                "seed": {"type": "integer", "minimum": 0},
                "tau_factor": {"type": "number", "exclusiveMinimum": 0},
                "tau_tolerance": {"type": "number", "exclusiveMinimum": 0},
                "check_every": {"type": "integer", "minimum": 10},
                "burn_in_tau": {"type": "number", "minimum": 0},
                "optimiser_evaluations": {"type": "integer", "minimum": 0},
                "init_scale": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    },
}

# Sheet columns that override one parameter setting: ``<param>_<field>``.
OVERRIDE_FIELDS = ("guess", "min", "max", "fixed")


#: Walkers of a fit of up to 11 free parameters (tutorial fit: 24 walkers converge in 27k evaluations, 32 need 32k;
#: benchmarks/fit_speed.py); larger models get two more than twice their free parameters.
DEFAULT_WALKERS = 24


def walker_count(options: FitOptions, n_free: int) -> int:
    """The number of walkers of a fit with ``n_free`` free parameters: ``fit.nwalkers``, or the default."""
    return options.nwalkers if options.nwalkers is not None else max(DEFAULT_WALKERS, 2 * n_free + 2)


@dataclass(frozen=True)
class FitOptions:
    """Sampler settings (``fit:`` in YAML).

    ``errors``: ``robust`` takes the errors from the sandwich error model (:mod:`kinms_core.sandwich`), which
    measures the noise's correlation and the model's mismatch in the data; ``scaled`` inflates the RMS by the fixed
    factors ``chi2_correction`` and ``noise_correlation`` (:func:`kinms_core.likelihood.inflated_rms`), as the seed
    tutorial does. ``side_errors`` (robust errors only) adds half the difference between fits of the approaching and
    the receding side in quadrature (:mod:`kinms_core.sides`); ``family_errors`` (robust errors only) adds the spread
    of the estimates of the model families that extend the fit's, with their Akaike weights
    (:mod:`kinms_core.family_errors`).
    """

    errors: str = "robust"
    side_errors: bool = True
    family_errors: bool = True
    chi2_correction: str = "detected"
    noise_correlation: str = "beam"
    # None: DEFAULT_WALKERS, or two more than twice the free parameters for the larger model families
    nwalkers: int | None = None
    max_steps: int = 5000
    min_steps: int = 0
    seed: int = 1
    tau_factor: float = 50.0
    # Successive tau estimates 100 steps apart scatter by 2-5% even in a long, stationary chain: a 1% tolerance
    # kept the tutorial's fit running to 3500 steps when 50 tau was reached at 1000.
    tau_tolerance: float = 0.05
    check_every: int = 100
    burn_in_tau: float = 3.0
    optimiser_evaluations: int = 4000
    init_scale: float = 1e-3


@dataclass(frozen=True)
class Parameter:
    """One parameter's setting; ``guess``, ``min`` and ``max`` are numbers or ``"auto"``."""

    name: str
    guess: float | str = "auto"
    min: float | str = "auto"
    max: float | str = "auto"
    fixed: bool = False
    prior: tuple[float, float] | None = None

    def resolve(self, guesses: Mapping[str, float], bounds: Mapping[str, tuple[float, float]]) -> Parameter:
        """Replace ``auto`` by the data's guesses and bounds; check the result."""
        guess = guesses.get(self.name) if self.guess == "auto" else self.guess
        if guess is None:
            raise SettingsError(f"parameters.{self.name}.guess is auto but the data gave no value: set a number")
        if not math.isfinite(float(guess)):
            raise SettingsError(f"parameters.{self.name}.guess must be finite, got {guess!r}")
        guess = float(guess)
        if self.fixed:  # a fixed parameter needs no bounds
            return Parameter(self.name, guess, guess, guess, True, self.prior)
        low = bounds.get(self.name, (None, None))[0] if self.min == "auto" else self.min
        high = bounds.get(self.name, (None, None))[1] if self.max == "auto" else self.max
        for label, value in (("min", low), ("max", high)):
            if value is None:
                raise SettingsError(f"parameters.{self.name}.{label} is auto but the data gave no value: set a number")
            if not math.isfinite(float(value)):
                raise SettingsError(f"parameters.{self.name}.{label} must be finite, got {value!r}")
        low, high = float(low), float(high)
        if low >= high:
            raise SettingsError(f"parameters.{self.name}: min ({low:g}) must be below max ({high:g})")
        if not low <= guess <= high:
            if self.guess != "auto":
                raise SettingsError(
                    f"parameters.{self.name}.guess {guess:g} lies outside its bounds [{low:g}, {high:g}]"
                )
            guess = min(max(guess, low), high)  # a data-derived guess outside the bounds is clipped into them
        if self.prior is not None and not self.prior[1] > 0:
            raise SettingsError(f"parameters.{self.name}.prior gaussian width must be positive, got {self.prior[1]}")
        return Parameter(self.name, guess, low, high, False, self.prior)


@dataclass(frozen=True)
class FitSettings:
    """Validated settings: model families, per-parameter settings, sampler options."""

    spec: ModelSpec
    parameters: dict[str, Parameter]
    options: FitOptions
    # None: chosen from the data (kinms_core.likelihood.enough_clouds), starting at FIT_CLOUDS
    n_clouds: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def resolved(self, guesses: Mapping[str, float], bounds: Mapping[str, tuple[float, float]]) -> list[Parameter]:
        """Parameters in model order with every ``auto`` replaced; at least one must be free."""
        guesses, bounds = _family_guesses(self.spec, guesses, bounds)
        out = [self.parameters[name].resolve(guesses, bounds) for name in self.spec.parameter_names]
        if all(p.fixed for p in out):
            raise SettingsError("every parameter is fixed: free at least one (parameters.<name>.fixed: false)")
        return out

    def for_data(self, guesses: Mapping[str, float], extent: float | None = None) -> FitSettings:
        """The settings with a warp's ``auto`` radii set from the emission's half-light radius (from the ingestion's
        scale-length guess): a linear warp's pivot, where its ``pa`` and ``inc`` are measured, at it, and a ring-wise
        warp's radii at :data:`~kinms_core.parametric.AUTO_WARP_RADII` times it, scaled down together to end at
        ``extent`` (arcsec: how far the signal mask reaches from the centre, :attr:`kinms_core.likelihood.FitData
        .emission_extent`) where the last would pass it. A ring beyond the gas has a turn that nothing measures: the
        half-light multiples put the last ring 10-70% beyond the mask of each observed cube (ESO 121-G6's rings
        ending at its mask's 290" instead of 331" fit it better by 2426 in chi-square with the same parameters)."""
        half_light = HALF_LIGHT_PER_SCALE * float(guesses.get("scalerad", math.nan))
        if self.spec.warp == "linear" and self.spec.warp_radius is None:
            return replace(self, spec=replace(self.spec, warp_radius=_emission_size(half_light)))
        if self.spec.warp == "rings" and self.spec.warp_radii is None:
            reach = _emission_size(half_light) * AUTO_WARP_RADII[-1]
            if extent is not None and 0.0 < extent < reach:
                reach = extent
            radii = tuple(reach * multiple / AUTO_WARP_RADII[-1] for multiple in AUTO_WARP_RADII)
            return replace(self, spec=replace(self.spec, warp_radii=radii))
        return self


def _emission_size(half_light: float) -> float:
    """The half-light radius (arcsec) that auto warp radii scale with, or an error that says what to give."""
    if not (math.isfinite(half_light) and half_light > 0):
        raise SettingsError(
            "model.warp_radius or warp_radii auto needs the emission's size (the scalerad guess): give them in arcsec"
        )
    return half_light


def _family_guesses(
    spec: ModelSpec, guesses: Mapping[str, float], bounds: Mapping[str, tuple[float, float]]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Guesses and bounds for family parameters the ingestion does not estimate directly, from those it does: the
    exponential scale length and its bounds (whose upper end is half the cube), vflat and the dispersion's range."""
    guesses, bounds = dict(guesses), dict(bounds)
    if "scalerad" in guesses:
        h = guesses["scalerad"]
        low, high = bounds.get("scalerad", (0.1 * h, 10.0 * h))
        half_cube = high
        for name, guess, bound in (
            ("ring_radius", 2.0 * h, (0.0, 6.0 * high)),
            ("ring_width", h, (low, 3.0 * high)),
            ("ring_fraction", 0.5, (0.0, 1.0)),
            ("reff", HALF_LIGHT_PER_SCALE * h, (low, half_cube)),
            ("sersic_n", 1.0, (0.3, 8.0)),
            ("hole_radius", 0.5 * h, (0.0, half_cube)),
            # up to a disc as thick as it is wide
            ("z0", 0.1 * h, (0.0, 2.0 * h)),
            # a warp of up to 45 degrees, a dispersion change of up to its whole range, over half the cube
            ("pa_grad", 0.0, (-45.0 / half_cube, 45.0 / half_cube)),
            ("inc_grad", 0.0, (-45.0 / half_cube, 45.0 / half_cube)),
        ):
            guesses.setdefault(name, guess)
            bounds.setdefault(name, bound)
        sigma_high = bounds.get("sigma", (0.0, 100.0))[1]
        guesses.setdefault("sigma_grad", 0.0)
        bounds.setdefault("sigma_grad", (-sigma_high / half_cube, sigma_high / half_cube))
    # a lopsided disc from symmetric, up to one half holding all the light
    for name in ASYMMETRIES["lopsided"]:
        guesses.setdefault(name, 0.0)
        bounds.setdefault(name, (-1.0, 1.0))
    # a ring-wise warp's turns of up to 45 degrees
    for name in spec.parameter_names:
        if name.startswith(("dpa_", "dinc_")):
            guesses.setdefault(name, 0.0)
            bounds.setdefault(name, (-45.0, 45.0))
    if "vflat" in guesses:
        for k in range(len(spec.ring_radii)):
            guesses.setdefault(f"vrot_{k + 1}", guesses["vflat"])
            bounds.setdefault(f"vrot_{k + 1}", (0.0, bounds.get("vflat", (0.0, 3.0 * guesses["vflat"]))[1]))
        motion = max(50.0, 0.5 * guesses["vflat"])
        for name, guess, bound in (
            ("vrad", 0.0, (-motion, motion)),
            ("v2t", 0.0, (-motion, motion)),
            ("v2r", 0.0, (-motion, motion)),
            ("phib", 45.0, (0.0, 180.0)),
        ):
            guesses.setdefault(name, guess)
            bounds.setdefault(name, bound)
    return guesses, bounds


# JSON Schema counts 8.0 as an integer; Python does not (emcee refuses a float number of walkers), so settings that
# must be integers must be written as integers.
_TYPE_CHECKER = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
)
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPE_CHECKER)


def _format_error(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"settings key {where}: {_specific_message(error)}"


def _specific_message(error: jsonschema.ValidationError) -> str:
    """For a value matching none of several alternatives (e.g. an integer or ``auto``), the alternative's complaint
    that says what is wrong with a value of the right kind ("is greater than the maximum"), else all of them."""
    if not error.context:
        return error.message
    kinds = ("type", "const", "enum")
    specific = [e.message for e in error.context if e.validator not in kinds]
    return "; ".join(specific) if specific else " or ".join(dict.fromkeys(e.message for e in error.context))


def _check_known_before_fitting(parameters: Mapping[str, Parameter], options: FitOptions) -> None:
    """What can be checked without the data: numeric bounds in order, numeric guesses inside numeric bounds, and
    enough walkers for the free parameters (``auto`` values are checked when the data give them)."""
    problems = []
    for p in parameters.values():
        numbers = {label: getattr(p, label) for label in ("guess", "min", "max") if getattr(p, label) != "auto"}
        bad = [label for label, value in numbers.items() if not math.isfinite(float(value))]
        if bad:
            problems.append(f"parameters.{p.name}.{bad[0]} must be finite, got {numbers[bad[0]]!r}")
            continue
        if p.fixed:
            continue
        if "min" in numbers and "max" in numbers and not numbers["min"] < numbers["max"]:
            problems.append(f"parameters.{p.name}: min ({numbers['min']:g}) must be below max ({numbers['max']:g})")
        elif "guess" in numbers:
            low, high = numbers.get("min", -math.inf), numbers.get("max", math.inf)
            if not low <= numbers["guess"] <= high:
                problems.append(
                    f"parameters.{p.name}.guess {numbers['guess']:g} lies outside its bounds [{low:g}, {high:g}]"
                )
        if p.prior is not None and not p.prior[1] > 0:
            problems.append(f"parameters.{p.name}.prior gaussian width must be positive, got {p.prior[1]}")
    n_free = sum(not p.fixed for p in parameters.values())
    if n_free == 0:
        problems.append("every parameter is fixed: free at least one (parameters.<name>.fixed: false)")
    elif options.nwalkers is not None and options.nwalkers < 2 * n_free:
        problems.append(
            f"fit.nwalkers ({options.nwalkers}) must be at least twice the free parameters ({n_free}): raise it to "
            f"{2 * n_free} or fix some parameters"
        )
    if problems:
        raise SettingsError("; ".join(problems))


def load_settings(source: str | Path | Mapping[str, Any] | None = None) -> FitSettings:
    """Read and validate settings from a YAML file or a mapping (``None``: all defaults).

    Raises
    ------
    SettingsError
        On unknown keys, wrong types (a float where an integer is needed), values out of range, unknown parameter
        names, a bad prior, and what is wrong before any data are seen: ``min >= max``, a guess outside its
        bounds, fewer walkers than twice the free parameters; naming the key.
    MissingInputError
        The settings file does not exist.
    """
    if source is None:
        raw: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise MissingInputError(f"settings file {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SettingsError(f"settings file {path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise SettingsError(f"settings file {path} must hold a mapping with model/parameters/fit keys")
    errors = sorted(_Validator(SETTINGS_SCHEMA).iter_errors(raw), key=lambda e: e.path)
    if errors:
        raise SettingsError("; ".join(_format_error(e) for e in errors))

    model = raw.get("model", {})
    try:
        spec = ModelSpec(
            surface_brightness=model.get("surface_brightness", "exponential"),
            rotation_curve=model.get("rotation_curve", "arctan"),
            ring_radii=tuple(model.get("ring_radii", ())),
            warp=model.get("warp", "none"),
            thickness=model.get("thickness", "thin"),
            dispersion=model.get("dispersion", "constant"),
            motions=model.get("motions", "none"),
            asymmetry=model.get("asymmetry", "none"),
            warp_radius=None if model.get("warp_radius", "auto") == "auto" else float(model["warp_radius"]),
            warp_radii=None if model.get("warp_radii", "auto") == "auto" else tuple(model["warp_radii"]),
        )
    except ValueError as exc:
        raise SettingsError(f"settings key {exc}") from exc
    names = spec.parameter_names
    given = raw.get("parameters", {}) or {}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise SettingsError(
            f"settings key parameters: unknown parameter(s) {unknown} for a {spec.surface_brightness} disc with a "
            f"{spec.rotation_curve} rotation curve; known: {list(names)}"
        )
    parameters = {}
    for name in names:
        entry = dict(given.get(name, {}))
        prior = entry.pop("prior", None)
        parameters[name] = Parameter(name=name, prior=tuple(prior["gaussian"]) if prior else None, **entry)
    options = FitOptions(**raw.get("fit", {}))
    scaling = sorted({"chi2_correction", "noise_correlation"} & set(raw.get("fit", {})))
    if options.errors == "robust" and scaling:
        raise SettingsError(
            f"settings key fit.{scaling[0]} applies only with fit.errors: scaled (fixed inflation factors); the "
            "default, fit.errors: robust, measures the noise correlation and the model mismatch from the data"
        )
    for key in ("side_errors", "family_errors"):
        if options.errors == "scaled" and key in raw.get("fit", {}):
            raise SettingsError(f"settings key fit.{key} applies only with fit.errors: robust (the default)")
    _check_known_before_fitting(parameters, options)
    return FitSettings(
        spec=spec,
        parameters=parameters,
        options=options,
        n_clouds=None if model.get("n_clouds", "auto") == "auto" else int(model["n_clouds"]),
        raw=raw,
    )


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with per-galaxy overrides ``<param>_<guess|min|max|fixed>`` (e.g. from a survey sheet) applied.

    Empty values (None, NaN, "") are ignored; ``fixed`` accepts true/false/yes/no/1/0.
    """
    out = copy.deepcopy(dict(raw))
    params = out.setdefault("parameters", {}) or {}
    out["parameters"] = params
    for key, value in overrides.items():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            continue
        name, _, field_name = str(key).rpartition("_")
        if field_name not in OVERRIDE_FIELDS or not name:
            raise SettingsError(f"override {key!r} is not of the form <parameter>_<{'|'.join(OVERRIDE_FIELDS)}>")
        entry = dict(params.get(name, {}))
        if field_name == "fixed":
            fixed = as_bool(value)
            if fixed is None:
                raise SettingsError(f"override {key}={value!r}: give true or false")
            entry["fixed"] = fixed
        elif isinstance(value, str) and value.strip().lower() == "auto":
            entry[field_name] = "auto"
        else:
            try:
                entry[field_name] = float(value)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"override {key}={value!r}: give a number or auto") from exc
        params[name] = entry
    return out
