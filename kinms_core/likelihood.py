"""Posterior of a parameterised galaxy given a data cube: a Gaussian chi-square over the noise map, tempered.

The chi-square weighs every finite voxel by its own noise (a noise map for primary-beam corrected cubes, or one RMS).
How it becomes honest errors is chosen by ``fit.errors``: ``robust`` (the default) divides it by the temperature of
the sandwich error model (:mod:`kinms_core.sandwich`), ``scaled`` inflates the RMS by fixed factors
(:func:`inflated_rms`: the beam's area, the seed tutorial's (2N)^(1/4)).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import CubeError, InputError, ModelOutsideCubeError
from .moments import mask_extent
from .obspars import ObsPars
from .parametric import GalaxyModel, ModelSpec, kinematic_centre
from .sandwich import ErrorModel, error_model, sandwich_widths
from .settings import Parameter
from .surface import map_parameters, surface_map

__all__ = [
    "MODEL_NOISE_CHI2_PER_BEAM",
    "FitData",
    "LogPosterior",
    "enough_clouds",
    "inflated_rms",
    "maximisation_posterior",
    "model_noise_chi2",
    "offset_reach",
    "parameters_to_sampling",
    "sampling_to_parameters",
    "sandwich_at",
    "widths_at",
]

log = logging.getLogger(__name__)


def _projected(names: Sequence[str]) -> tuple[int | None, list[int]]:
    """Index of ``inc`` and of the rotation velocities among free parameter ``names`` (when both are free)."""
    velocities = [k for k, n in enumerate(names) if n == "vflat" or n.startswith("vrot_")]
    if "inc" not in names or not velocities:
        return None, []
    return list(names).index("inc"), velocities


def parameters_to_sampling(theta: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Sampler coordinates of free-parameter vectors ``theta`` (last axis in ``names`` order): rotation velocities
    become projected velocities ``v sin(inc)``, which the data constrain directly; the rest is unchanged.

    The degeneracy between inclination and rotation velocity makes a curved (banana) posterior that ensemble moves
    cross slowly; in these coordinates it is nearly straight, which shortens the autocorrelation time (tutorial
    galaxy: tau about 16 steps instead of 25 to 50).
    """
    out = np.array(theta, dtype=float, copy=True)
    inc, velocities = _projected(names)
    if inc is not None:
        out[..., velocities] *= np.sin(np.radians(out[..., inc]))[..., None]
    return out


def sampling_to_parameters(u: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Inverse of :func:`parameters_to_sampling`."""
    out = np.array(u, dtype=float, copy=True)
    inc, velocities = _projected(names)
    if inc is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[..., velocities] /= np.sin(np.radians(out[..., inc]))[..., None]
    return out


@dataclass
class FitData:
    """What a fit needs from a (trimmed) cube.

    Attributes
    ----------
    data
        Cube ``(nv, ny, nx)``; NaN voxels are ignored.
    obspars
        Its grid, beam and WCS reference.
    rms
        Typical noise per voxel (cube units; the median of ``noise`` when that is given).
    n_detected
        Number of voxels with detected signal (the chi-square correction's N for ``detected``).
    guesses, bounds
        Data-derived first guesses and bounds per parameter (used where settings say ``auto``).
    galaxy
        Name for titles and logs.
    header
        FITS header of the data, reused for model and residual cubes (optional).
    mask
        Detected-signal mask (optional; the error model's galaxy region and plots).
    noise
        Noise per voxel, broadcastable to ``data`` (e.g. a ``(ny, nx)`` map for a primary-beam corrected cube, or
        ``(nv, ny, nx)``); None: ``rms`` everywhere.
    """

    data: np.ndarray
    obspars: ObsPars
    rms: float
    n_detected: int
    guesses: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    galaxy: str = "galaxy"
    header: object | None = None
    mask: np.ndarray | None = None
    noise: np.ndarray | None = None

    @property
    def emission_extent(self) -> float | None:
        """How far (arcsec) the signal mask reaches from the guessed centre (:func:`kinms_core.moments.mask_extent`);
        None without a mask."""
        if self.mask is None:
            return None
        return mask_extent(self.mask, self.obspars.cellsize, kinematic_centre(self.obspars, self.guesses))

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=float)
        if self.data.shape != self.obspars.shape:
            raise ValueError(f"{self.galaxy}: data shape {self.data.shape} differs from obspars {self.obspars.shape}")
        if not (np.isfinite(self.rms) and self.rms > 0):
            raise InputError(f"{self.galaxy}: rms must be a positive finite noise level, got {self.rms!r}")
        if not np.isfinite(self.data).any():
            raise CubeError(f"{self.galaxy}: the data cube holds no finite voxel")
        if self.noise is not None:
            try:
                noise = np.broadcast_to(np.asarray(self.noise, dtype=float), self.data.shape)
            except ValueError as exc:
                raise ValueError(
                    f"{self.galaxy}: noise of shape {np.shape(self.noise)} does not fit the data {self.data.shape}"
                ) from exc
            finite = np.isfinite(self.data)
            if not (np.all(np.isfinite(noise[finite])) and np.all(noise[finite] > 0)):
                raise InputError(f"{self.galaxy}: the noise must be positive and finite wherever the data are")
            self.noise = np.asarray(self.noise, dtype=float)

    @property
    def noise_cube(self) -> np.ndarray:
        """Noise per voxel, ``(nv, ny, nx)`` (a broadcast view; ``rms`` everywhere when no map was given)."""
        if self.noise is None:
            return np.broadcast_to(np.float64(self.rms), self.data.shape)
        return np.broadcast_to(self.noise, self.data.shape)


def inflated_rms(
    rms: float,
    correction: str,
    *,
    n_detected: int,
    n_voxels: int,
    noise_correlation: str = "none",
    beam_pixels: float = 1.0,
) -> float:
    """RMS given to the likelihood, the product of two independent factors.

    ``noise_correlation``: ``beam`` multiplies by ``sqrt(beam area in pixels)``: neighbouring pixels of an
    interferometric cube share their noise (its correlation has the beam's shape), so the chi-square of independent
    voxels counts each independent sample that many times and its posterior is too narrow by that square root.
    ``none`` treats voxels as independent (white noise, as in the seed tutorial's mock).

    ``correction``: ``detected`` or ``all`` multiplies by ``(2N)^(1/4)`` with N the detected or all finite voxels;
    ``none`` by 1. Chi-square has variance 2N; this widens the posterior so that systematic model mismatch of that
    size is not mistaken for information (seed tutorial, Smith et al. 2019).
    """
    if noise_correlation not in ("beam", "none"):
        raise ValueError(f"fit.noise_correlation must be beam or none, got {noise_correlation!r}")
    scale = math.sqrt(max(beam_pixels, 1.0)) if noise_correlation == "beam" else 1.0
    if correction == "none":
        return float(rms * scale)
    n = {"detected": n_detected, "all": n_voxels}.get(correction)
    if n is None:
        raise ValueError(f"fit.chi2_correction must be detected, all or none, got {correction!r}")
    if n < 1:
        raise ValueError(f"chi2_correction {correction!r} needs at least one voxel, got N={n}")
    return float(rms * scale * (2.0 * n) ** 0.25)


#: The model's Monte-Carlo noise, as the chi-square it adds over the galaxy's voxels, must stay below this many times
#: the beam's area in pixels (about twice the chain's temperature, which is about half the beam's area for
#: beam-correlated noise): the model is a histogram of cloudlets, and with too few of them the log-likelihood is rough
#: on the scale of the posterior (steps of a nat and more as cloudlets cross pixel and channel edges), which stalls
#: the sampler and spoils the error model's finite differences.
MODEL_NOISE_CHI2_PER_BEAM = 0.25
#: Most cloudlets :func:`enough_clouds` will choose.
MAX_AUTO_CLOUDS = 2**18


def model_noise_chi2(model_a: GalaxyModel, model_b: GalaxyModel, values: dict[str, float], noise: np.ndarray) -> float:
    """The chi-square that one model's Monte-Carlo noise adds, over the voxels where the model is above half the
    noise: half the summed squared difference of two models with independent cloudlets, in units of the noise."""
    cube_a, cube_b = model_a.cube(values), model_b.cube(values)
    signal = np.abs(cube_a) > 0.5 * noise
    return float(0.5 * np.sum(((cube_a - cube_b)[signal] / noise[signal]) ** 2))


def enough_clouds(
    fit_data: FitData, spec: ModelSpec, values: dict[str, float], *, start: int, seed: int, max_offset: float = 0.0
) -> tuple[int, float]:
    """The fewest cloudlets, from ``start`` up by doubling to :data:`MAX_AUTO_CLOUDS`, whose Monte-Carlo noise at
    ``values`` adds less than :data:`MODEL_NOISE_CHI2_PER_BEAM` beam areas to the chi-square (a bright, finely
    sampled cube needs more than a faint, coarse one). Returns ``(n_clouds, that chi-square)``."""
    surface = _surface(fit_data, spec)
    noise = np.asarray(fit_data.noise_cube)
    limit = MODEL_NOISE_CHI2_PER_BEAM * max(fit_data.obspars.beam_area_pixels, 1.0)
    n = start
    while True:
        models = [
            GalaxyModel(fit_data.obspars, spec, n_clouds=n, seed=s, max_offset=max_offset, surface=surface)
            for s in (seed, seed + 1)
        ]
        chi2 = model_noise_chi2(*models, values, noise)
        log.info("%s: %d cloudlets add %.3g to the chi-square (limit %.3g)", fit_data.galaxy, n, chi2, limit)
        if chi2 <= limit or n >= MAX_AUTO_CLOUDS:
            if chi2 > limit:
                log.warning(
                    "%s: even %d cloudlets leave Monte-Carlo noise of chi-square %.3g (limit %.3g): the fit may mix "
                    "slowly; flagged model_noise",
                    fit_data.galaxy,
                    n,
                    chi2,
                    limit,
                )
            return n, chi2
        n *= 2


def offset_reach(parameters: Sequence[Parameter]) -> float:
    """The largest centre offset (arcsec) a fit may try: the model's radius grid reaches that much further."""
    reach = [max(abs(p.min), abs(p.max), abs(p.guess)) for p in parameters if p.name in ("xc", "yc")]
    return max(reach, default=0.0)


def _surface(fit_data: FitData, spec: ModelSpec) -> np.ndarray | None:
    """The emission's map for the ``data`` surface brightness, else None."""
    if spec.surface_brightness != "data":
        return None
    if fit_data.mask is None:
        raise InputError(f"{fit_data.galaxy}: model.surface_brightness data needs the signal mask")
    return surface_map(fit_data.data, fit_data.mask, fit_data.obspars)


class LogPosterior:
    """``log p(theta | data)`` over the free parameters: uniform priors inside bounds, optional Gaussian priors.

    Parameters
    ----------
    fit_data
        The data and its noise.
    parameters
        Resolved parameters (numbers, no ``auto``) in the model's order.
    spec
        Model families.
    correction, noise_correlation
        How the RMS is inflated (see :func:`inflated_rms`; ``none`` and ``none`` for robust errors).
    n_clouds, seed
        Model cloudlets and the seed of their draws.
    temperature
        The chi-square is divided by this (the sandwich error model's, for robust errors; 1 otherwise).
    surface
        The map of the ``data`` surface brightness (default: made from ``fit_data``; a fit of part of the cube
        passes the whole cube's, so that the model keeps all of the galaxy's gas).
    """

    def __init__(
        self,
        fit_data: FitData,
        parameters: Sequence[Parameter],
        spec: ModelSpec,
        *,
        correction: str = "detected",
        noise_correlation: str = "none",
        n_clouds: int,
        seed: int,
        temperature: float = 1.0,
        surface: np.ndarray | None = None,
    ) -> None:
        self.parameters = list(parameters)
        self.names = [p.name for p in self.parameters]
        if self.names != list(spec.parameter_names):
            raise ValueError(f"parameters {self.names} do not match the model's {list(spec.parameter_names)}")
        self.free = [i for i, p in enumerate(self.parameters) if not p.fixed]
        self.free_names = [self.names[i] for i in self.free]
        self.low = np.array([self.parameters[i].min for i in self.free], dtype=float)
        self.high = np.array([self.parameters[i].max for i in self.free], dtype=float)
        self.guess = np.array([self.parameters[i].guess for i in self.free], dtype=float)
        self._template = np.array([p.guess for p in self.parameters], dtype=float)
        self._priors = [(k, p.prior) for k, p in enumerate(self.parameters[i] for i in self.free) if p.prior]
        max_offset = offset_reach(self.parameters)
        self.max_offset = max_offset
        self.surface = surface if surface is not None else _surface(fit_data, spec)
        # the information criterion's price of a map taken from the data (0 for a parametric surface brightness)
        self.map_parameters = 0.0 if self.surface is None else map_parameters(fit_data.mask, fit_data.obspars)
        self.model = GalaxyModel(
            fit_data.obspars,
            spec,
            n_clouds=n_clouds,
            seed=seed,
            max_offset=max_offset,
            surface=self.surface,
        )
        finite = np.isfinite(fit_data.data)
        self.n_voxels = int(finite.sum())
        self._index = None if finite.all() else np.flatnonzero(finite)
        self._data = fit_data.data.ravel() if self._index is None else fit_data.data.ravel()[self._index]
        # Inverse noise per used voxel (one number when the noise is uniform: a scalar multiply is cheaper).
        if fit_data.noise is None:
            self._inverse_noise: float | np.ndarray = 1.0 / float(fit_data.rms)
        else:
            noise = fit_data.noise_cube.ravel()
            self._inverse_noise = 1.0 / (noise if self._index is None else noise[self._index])
        self.rms = float(fit_data.rms)
        self.inflation = inflated_rms(
            1.0,
            correction,
            n_detected=fit_data.n_detected,
            n_voxels=self.n_voxels,
            noise_correlation=noise_correlation,
            beam_pixels=fit_data.obspars.beam_area_pixels,
        )
        self.rms_inflated = self.rms * self.inflation
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
        self.temperature = float(temperature)

    def values(self, theta: Sequence[float]) -> dict[str, float]:
        """All parameter values (fixed ones included) for free-parameter vector ``theta``."""
        full = self._template.copy()
        full[self.free] = theta
        return dict(zip(self.names, full.tolist(), strict=True))

    def model_cube(self, theta: Sequence[float]) -> np.ndarray:
        """The model cube at ``theta``."""
        return self.model.cube(self.values(theta))

    def chi2(self, theta: Sequence[float]) -> float:
        """Chi-square of the model at ``theta`` over finite voxels, each weighed by its noise (not inflated)."""
        cube = self.model_cube(theta).ravel()
        model = cube if self._index is None else cube[self._index]
        residual = self._data - model
        residual *= self._inverse_noise
        # square-and-sum, not a BLAS dot: OpenBLAS would start threads that fight the other workers for the cores
        np.square(residual, out=residual)
        return float(residual.sum())

    @property
    def chi2_scale(self) -> float:
        """What the log-likelihood divides the chi-square by: the inflation squared times the temperature."""
        return self.inflation**2 * self.temperature

    def prior_precision(self) -> np.ndarray:
        """Precision matrix (diagonal) of the Gaussian priors over the free parameters (0 where none)."""
        out = np.zeros((len(self.free), len(self.free)))
        for k, (_, sd) in self._priors:
            out[k, k] = 1.0 / sd**2
        return out

    def log_prior(self, theta: np.ndarray) -> float:
        """Log prior: -inf outside the bounds, Gaussian terms where priors were given."""
        if np.any(theta < self.low) or np.any(theta > self.high):
            return -math.inf
        return -0.5 * sum(((theta[k] - mu) / sd) ** 2 for k, (mu, sd) in self._priors)

    def sampling_log_prob(self, u: Sequence[float]) -> float:
        """Log posterior density in the sampler's coordinates (:func:`parameters_to_sampling`), which carries the
        Jacobian ``1 / sin(inc)`` per projected velocity so that priors stay uniform in the catalogue parameters."""
        inc, velocities = _projected(self.free_names)
        theta = sampling_to_parameters(np.asarray(u, dtype=float), self.free_names)
        if inc is None:
            return self(theta)
        sin_inc = math.sin(math.radians(theta[inc]))
        if not sin_inc > 0:
            return -math.inf
        value = self(theta)
        return value - len(velocities) * math.log(sin_inc) if math.isfinite(value) else value

    def residuals(self, theta: Sequence[float]) -> np.ndarray:
        """The vector whose sum of squares is minus twice the log posterior inside the bounds (up to a constant):
        the voxels' residuals in units of the noise over ``sqrt(chi2_scale)``, then one term per Gaussian prior.
        Raises :class:`~kinms_core.errors.ModelOutsideCubeError` where the model leaves the cube."""
        theta = np.asarray(theta, dtype=float)
        cube = self.model_cube(theta).ravel()
        model = cube if self._index is None else cube[self._index]
        residual = (self._data - model) * (self._inverse_noise / math.sqrt(self.chi2_scale))
        priors = [(theta[k] - mu) / sd for k, (mu, sd) in self._priors]
        return np.concatenate([residual, np.array(priors, dtype=float)]) if priors else residual

    def __call__(self, theta: Sequence[float]) -> float:
        theta = np.asarray(theta, dtype=float)
        lp = self.log_prior(theta)
        if not math.isfinite(lp):
            return -math.inf
        try:
            chi2 = self.chi2(theta)
        except ModelOutsideCubeError:
            # a trial centre or velocity that moves all emission out of the cube: impossible, not an error of the fit
            return -math.inf
        return lp - 0.5 * chi2 / self.chi2_scale


def maximisation_posterior(
    fit_data: FitData,
    parameters: Sequence[Parameter],
    spec: ModelSpec,
    *,
    n_clouds: int,
    seed: int,
    surface: np.ndarray | None = None,
) -> LogPosterior:
    """A posterior that is only maximised (a side's or a model family's best point, :mod:`kinms_core.sides`,
    :mod:`kinms_core.family_errors`): the chi-square of independent noise, untempered, as only where its maximum lies
    and its chi-square there are used."""
    return LogPosterior(
        fit_data,
        parameters,
        spec,
        correction="none",
        noise_correlation="none",
        n_clouds=n_clouds,
        seed=seed,
        surface=surface,
    )


def _sandwich_arguments(
    fit_data: FitData, posterior: LogPosterior, theta: np.ndarray
) -> tuple[tuple[Any, ...], dict[str, float]]:
    op = fit_data.obspars
    arguments = (posterior.model_cube, theta, posterior.free_names, fit_data.data, fit_data.noise_cube)
    arguments += (fit_data.mask, posterior.low, posterior.high)
    return arguments, {"beam_fwhm_pixels": op.beam[0] / op.cellsize, "beam_area_pixels": op.beam_area_pixels}


def sandwich_at(fit_data: FitData, posterior: LogPosterior, theta: np.ndarray) -> ErrorModel:
    """The sandwich error model (:func:`kinms_core.sandwich.error_model`) of ``posterior``'s model on ``fit_data`` at
    the free values ``theta`` (a best point)."""
    arguments, beam = _sandwich_arguments(fit_data, posterior, theta)
    return error_model(*arguments, **beam)


def widths_at(fit_data: FitData, posterior: LogPosterior, theta: np.ndarray) -> dict[str, float]:
    """The sandwich standard deviations alone (:func:`kinms_core.sandwich.sandwich_widths`) of ``posterior``'s model
    on ``fit_data`` at ``theta``."""
    arguments, beam = _sandwich_arguments(fit_data, posterior, theta)
    return sandwich_widths(*arguments, **beam)
