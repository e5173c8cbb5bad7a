"""Honest errors for a model that is never exactly right: the sandwich covariance with correlated residuals.

A fit's Gaussian likelihood treats voxels as independent, each with its noise-map variance. On observed cubes two
things break that. Interferometric noise is correlated over the beam (and between channels after Hanning smoothing),
so neighbouring voxels repeat each other's information. And a galaxy is never exactly the model: part of the
residual is a coherent structure over many beams (a ring fitted as an exponential disc, radial motions, a warp),
which the likelihood would read as noise averaging away. Both make the likelihood's curvature overstate what the
data say.

The sandwich (robust) covariance ``V = H^-1 M H^-1`` (Huber 1967; White 1982; for Bayesian posteriors Müller 2013,
Econometrica 81, 1805) keeps the likelihood's curvature ``H = J^T J`` (``J``: the model's Jacobian in units of the
noise) and replaces its assumed information by the "meat" ``M = J^T C J``, with ``C`` the covariance of the
residuals as measured. Here ``C`` is taken as stationary within the galaxy: its autocovariance is that of the
whitened residuals at the best fit over the region where the model has signal, measured at lags up to a few beams
spatially and a few channels spectrally and tapered to zero there (a spatial HAC estimator, Conley 1999, J.
Econometrics 92, 1). Pure noise gives back the correlated-noise covariance (the beam's autocorrelation); a mismatch
adds its own coherent part, in the directions of the parameters it moves.

The MCMC samples the likelihood of the correlated noise alone: the chi-square divided by one scalar, the
temperature, which is the geometric mean inflation of the noise-only sandwich over ``H^-1`` (about the beam's area
in pixels for beam-correlated noise, 1 for white noise). Its samples are then mapped affinely onto the full sandwich
covariance, parameter by parameter (the "curvature adjustment" of Ribatet, Cooley & Davison 2012, Statistica Sinica
22, 813). Tempering by the full inflation instead lets the chain wander along the model's degenerate valleys (e.g.
a solid-body arctan curve with vflat and rturn both large) far beyond where the local sandwich describes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from .errors import ModelOutsideCubeError

__all__ = [
    "ErrorModel",
    "adjust_samples",
    "autocovariance",
    "data_noise_volume",
    "error_model",
    "jacobian",
    "lag_window",
    "meat",
    "sandwich_widths",
    "triangle_taper",
]

log = logging.getLogger(__name__)

#: Spatial reach of the residual autocovariance, in beam FWHM (major axis): the beam's own correlation is gone by 1.5
#: FWHM; beyond, the taper weighs mismatch structures on scales of a few beams.
LAG_BEAMS = 3.0
#: Spectral reach of the residual autocovariance, in channels.
LAG_CHANNELS = 4
#: Fewer line-free voxels than this, and the noise's correlation is taken to be the beam's.
MIN_LINE_FREE = 2000
#: Voxels whose best-fit model exceeds this many times their noise belong to the galaxy's region (with the mask).
SIGNAL_LEVEL = 0.5


def lag_window(
    beam_fwhm_pixels: float, shape: tuple[int, int, int], *, beams: float = LAG_BEAMS, channels: int = LAG_CHANNELS
) -> tuple[int, int, int]:
    """Largest lags ``(kv, ky, kx)`` in voxels: ``beams`` beam FWHM spatially and ``channels`` channels, and no
    more than half of each axis."""
    nv, ny, nx = shape
    k = max(1, int(math.ceil(beams * beam_fwhm_pixels)))
    return (min(int(channels), nv // 2), min(k, ny // 2), min(k, nx // 2))


def _padded(shape: Sequence[int], lags: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(n) + int(k) for n, k in zip(shape, lags, strict=True))


def _window_index(lags: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Index arrays that pick lags ``-k..k`` per axis out of a circular correlation (negative lags wrapped)."""
    return tuple(np.arange(-k, k + 1) for k in lags)


def _correlate(a: np.ndarray, b: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """``sum_i a(i) b(i + lag)`` for lags ``-k..k`` per axis, shape ``(2kv+1, 2ky+1, 2kx+1)`` (linear, not
    circular: the FFT is padded by the largest lag)."""
    shape = _padded(a.shape, lags)
    axes = (0, 1, 2)
    spectrum = np.conj(np.fft.rfftn(a, s=shape, axes=axes)) * np.fft.rfftn(b, s=shape, axes=axes)
    full = np.fft.irfftn(spectrum, s=shape, axes=axes)
    iv, iy, ix = _window_index(lags)
    return full[np.ix_(iv % shape[0], iy % shape[1], ix % shape[2])]


def autocovariance(field: np.ndarray, region: np.ndarray, lags: Sequence[int], *, min_pairs: int = 20) -> np.ndarray:
    """Autocovariance of ``field`` over the voxels of ``region`` at lags ``-k..k``: the mean of ``f(i) f(i+lag)``
    over pairs with both voxels in the region (0 where fewer than ``min_pairs`` pairs exist).

    The field is taken to have zero mean (whitened residuals or noise)."""
    inside = np.asarray(region, dtype=bool)
    values = np.where(inside, np.nan_to_num(field), 0.0)
    weights = inside.astype(float)
    sums = _correlate(values, values, lags)
    pairs = _correlate(weights, weights, lags)
    pairs = np.rint(pairs)
    return np.where(pairs >= min_pairs, sums / np.maximum(pairs, 1.0), 0.0)


def triangle_taper(lags: Sequence[int]) -> np.ndarray:
    """Separable triangular (Bartlett) taper over lags ``-k..k`` per axis, 1 at lag 0 and 0 one step beyond ``k``.

    Its Fourier transform is a product of Fejér kernels, which are non-negative: a tapered autocovariance stays a
    valid (positive semi-definite) covariance."""
    weights = [1.0 - np.abs(np.arange(-k, k + 1)) / (k + 1.0) for k in lags]
    return weights[0][:, None, None] * weights[1][None, :, None] * weights[2][None, None, :]


def meat(jacobian_columns: np.ndarray, covariance: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """``M_kl = sum_i sum_j J_k(i) C(j - i) J_l(j)`` for a stationary covariance ``C`` given at lags ``-k..k``."""
    n = jacobian_columns.shape[0]
    shape = _padded(jacobian_columns.shape[1:], lags)
    axes = (0, 1, 2)
    spectra = [np.fft.rfftn(column, s=shape, axes=axes) for column in jacobian_columns]
    iv, iy, ix = _window_index(lags)
    index = np.ix_(iv % shape[0], iy % shape[1], ix % shape[2])
    out = np.zeros((n, n))
    for k in range(n):
        for m in range(k, n):
            cross = np.fft.irfftn(np.conj(spectra[k]) * spectra[m], s=shape, axes=axes)[index]
            out[k, m] = out[m, k] = float(np.sum(cross * covariance))
    return out


def jacobian(
    model: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    steps: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    weight: np.ndarray,
) -> np.ndarray:
    """Derivatives of ``model(theta) * weight`` (a cube) with respect to each parameter, ``(n, nv, ny, nx)``.

    Central differences of half-width ``steps``, one-sided where a bound is closer than a step. The model is a
    histogram of cloudlets, so a step much smaller than the posterior's width would measure a few cloudlets jumping
    between pixels; steps of about the posterior's width average over them.
    """
    theta = np.asarray(theta, dtype=float)
    columns = np.empty((theta.size, *weight.shape))
    for k in range(theta.size):
        h = float(steps[k])
        up, down = theta.copy(), theta.copy()
        up[k] = min(theta[k] + h, high[k])
        down[k] = max(theta[k] - h, low[k])
        if up[k] - down[k] <= 0:
            columns[k] = 0.0
            continue
        columns[k] = (model(up) - model(down)) * weight / (up[k] - down[k])
    return columns


def _psd(matrix: np.ndarray) -> np.ndarray:
    """The nearest (eigenvalue-clipped) positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.clip(values, 0.0, None)) @ vectors.T


def _whitening(curvature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(active, L)``: the parameters the data constrain at all (non-zero curvature) and the lower Cholesky factor
    of their curvature ``H = L L^T`` (a ridge of 1e-10 of the diagonal guards against round-off)."""
    diagonal = np.diag(curvature)
    active = diagonal > 1e-12 * max(float(diagonal.max()), 1e-300)
    sub = curvature[np.ix_(active, active)]
    scale = np.sqrt(np.diag(sub))
    unit = _psd(sub / np.outer(scale, scale)) + 1e-10 * np.eye(int(active.sum()))
    return active, np.linalg.cholesky(unit) * scale[:, None]


def _inflation(curvature: np.ndarray, meat_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(active, L, K)``: the sandwich in coordinates where ``H^-1`` is the identity, ``K = L^-1 M L^-T``; its
    eigenvalues say how much each direction's variance grows over that of independent, exactly modelled noise."""
    active, lower = _whitening(curvature)
    lower_inv = np.linalg.inv(lower)
    return active, lower, _psd(lower_inv @ meat_matrix[np.ix_(active, active)] @ lower_inv.T)


def _sandwich(curvature: np.ndarray, meat_matrix: np.ndarray) -> np.ndarray:
    """``H^-1 M H^-1`` over the constrained parameters, zero rows and columns for the others."""
    active, lower, inflation = _inflation(curvature, meat_matrix)
    lower_inv = np.linalg.inv(lower)
    out = np.zeros_like(curvature)
    out[np.ix_(active, active)] = lower_inv.T @ inflation @ lower_inv
    return out


def independent_covariance(curvature: np.ndarray) -> np.ndarray:
    """``H^-1`` over the constrained parameters (zero rows and columns for the others)."""
    active, lower = _whitening(curvature)
    lower_inv = np.linalg.inv(lower)
    out = np.zeros_like(curvature)
    out[np.ix_(active, active)] = lower_inv.T @ lower_inv
    return out


def _temperature(curvature: np.ndarray, meat_matrix: np.ndarray) -> float:
    """Geometric mean of the sandwich's inflation factors (basis-independent; 1 when nothing is inflated)."""
    _, _, inflation = _inflation(curvature, meat_matrix)
    values = np.linalg.eigvalsh(inflation)
    values = values[values > 1e-12 * max(float(values.max()), 1e-300)]
    return float(np.exp(np.mean(np.log(values)))) if values.size else 1.0


@dataclass
class ErrorModel:
    """How a fit turns the likelihood's curvature into honest errors (kept in ``map.json`` and ``summary.json``).

    Attributes
    ----------
    names
        Free parameters, in order.
    theta
        The point where everything was evaluated (the optimiser's maximum).
    steps
        Finite-difference half-widths of the Jacobian.
    curvature
        ``H = J^T J`` with ``J`` in units of the noise (the inverse covariance of independent, exactly modelled noise).
    meat
        ``M = J^T C J`` with the measured residual covariance ``C`` (noise and mismatch).
    noise_meat
        ``J^T C_n J`` with the noise's covariance ``C_n`` measured away from the galaxy.
    temperature
        The scalar by which the MCMC divides the chi-square: the geometric mean inflation of the noise-only sandwich
        over ``H^-1`` (1 for white noise; about the beam area in pixels for beam-correlated noise).
    lags
        Largest lags ``(kv, ky, kx)`` of the residual autocovariance.
    diagnostics
        Residual and noise statistics: ``residual_variance`` (whitened, in the galaxy's region), ``noise_variance``
        (whitened, away from it), ``noise_correlation_x``/``_y``/``_v`` (lag-1 correlations of the noise), ``n_signal``
        (voxels in the galaxy's region), and the per-parameter standard deviations of other estimators for
        comparison: ``sd_independent`` (``H^-1``), ``sd_noise`` (correlated noise only), ``sd_hac`` (scores).
    sides
        The approaching and the receding side fitted apart (:func:`kinms_core.sides.side_differences`): each side's
        best values and ``half_difference``, the term the errors gain in quadrature; empty when not made.
    families
        The model families that extend the fit's, maximised from its best point
        (:func:`kinms_core.family_errors.family_differences`): their best values, AIC and Akaike weights, and
        ``spread``, the term the errors gain in quadrature; empty when not made.
    """

    names: list[str]
    theta: list[float]
    steps: list[float]
    curvature: list[list[float]]
    meat: list[list[float]]
    noise_meat: list[list[float]]
    temperature: float
    lags: list[int]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    sides: dict[str, dict[str, float]] = field(default_factory=dict)
    families: dict[str, Any] = field(default_factory=dict)

    @property
    def covariance(self) -> np.ndarray:
        """The sandwich covariance ``H^-1 M H^-1`` (zero rows for parameters the data do not constrain)."""
        return _sandwich(np.array(self.curvature), np.array(self.meat))

    @property
    def standard_deviations(self) -> dict[str, float]:
        """``sqrt(diag V)`` per parameter."""
        return dict(zip(self.names, np.sqrt(np.diag(self.covariance)).tolist(), strict=True))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorModel:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass
class _SandwichParts:
    """What both the error model and the widths alone need: the whitened residual and the galaxy's region, the
    Jacobian's columns and steps, the curvature, the lag window and its taper, the residual's autocovariance and
    the meat."""

    residual: np.ndarray
    region: np.ndarray
    columns: np.ndarray
    steps: np.ndarray
    curvature: np.ndarray
    lags: tuple[int, int, int]
    taper: np.ndarray
    residual_acov: np.ndarray
    meat: np.ndarray


def _sandwich_parts(
    model: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    data: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray | None,
    low: np.ndarray,
    high: np.ndarray,
    beam_fwhm_pixels: float,
    beam_area_pixels: float,
    reach: tuple[float, int],
) -> _SandwichParts:
    weight, residual, region = _whitened_residual(model, theta, data, noise, mask)
    columns, steps = _jacobian_at(model, theta, low, high, weight, beam_area_pixels)
    curvature = np.einsum("kvyx,lvyx->kl", columns, columns)
    window = lag_window(beam_fwhm_pixels, data.shape, beams=reach[0], channels=reach[1])
    taper = triangle_taper(window)
    residual_acov = autocovariance(residual, region, window)
    meat_matrix = meat(columns, residual_acov * taper, window)
    return _SandwichParts(residual, region, columns, steps, curvature, window, taper, residual_acov, meat_matrix)


def sandwich_widths(
    model: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    names: Sequence[str],
    data: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray | None,
    low: np.ndarray,
    high: np.ndarray,
    *,
    beam_fwhm_pixels: float,
    beam_area_pixels: float,
) -> dict[str, float]:
    """The sandwich covariance's standard deviations at ``theta`` (arguments as :func:`error_model`'s), without the
    error model's noise-alone and diagnostic parts, which cost four times as much."""
    theta = np.asarray(theta, dtype=float)
    reach = (LAG_BEAMS, LAG_CHANNELS)
    parts = _sandwich_parts(model, theta, data, noise, mask, low, high, beam_fwhm_pixels, beam_area_pixels, reach)
    return dict(zip(names, np.sqrt(np.diag(_sandwich(parts.curvature, parts.meat))).tolist(), strict=True))


def error_model(
    model: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    names: Sequence[str],
    data: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray | None,
    low: np.ndarray,
    high: np.ndarray,
    *,
    beam_fwhm_pixels: float,
    beam_area_pixels: float,
    lag_beams: float = LAG_BEAMS,
    lag_channels: int = LAG_CHANNELS,
) -> ErrorModel:
    """The sandwich error model of a fit at its best point ``theta``.

    Parameters
    ----------
    model
        Free-parameter vector -> model cube ``(nv, ny, nx)``.
    theta, names, low, high
        The best point, the free parameters' names and bounds.
    data
        The data cube (NaN voxels are ignored).
    noise
        Noise per voxel (broadcastable to the cube).
    mask
        Detected-signal mask (part of the galaxy's region), or None.
    beam_fwhm_pixels, beam_area_pixels
        Beam major-axis FWHM and area in pixels (the lag window, and the first Jacobian step).
    lag_beams, lag_channels
        Reach of the residual autocovariance.

    Returns
    -------
    ErrorModel
    """
    theta = np.asarray(theta, dtype=float)
    reach = (lag_beams, lag_channels)
    parts = _sandwich_parts(model, theta, data, noise, mask, low, high, beam_fwhm_pixels, beam_area_pixels, reach)
    residual, region, columns, curvature = parts.residual, parts.region, parts.columns, parts.curvature
    lags, taper, residual_acov, meat_matrix = parts.lags, parts.taper, parts.residual_acov, parts.meat
    line_free = np.isfinite(data) & ~ndimage.binary_dilation(region, iterations=max(1, int(round(beam_fwhm_pixels))))
    noise_acov, noise_meat, temperature = _noise_alone(
        residual, line_free, columns, curvature, lags, taper, beam_area_pixels
    )
    centre = tuple(lags)

    def sd(matrix: np.ndarray) -> dict[str, float]:
        return dict(zip(names, np.sqrt(np.diag(_sandwich(curvature, matrix))).tolist(), strict=True))

    enough_line_free = line_free.sum() >= MIN_LINE_FREE
    diagnostics = {
        "residual_variance": float(residual_acov[centre]),
        "noise_variance": float(noise_acov[centre]),
        "noise_correlation_x": _lag1(noise_acov, centre, 2),
        "noise_correlation_y": _lag1(noise_acov, centre, 1),
        "noise_correlation_v": _lag1(noise_acov, centre, 0),
        # voxels per independent noise sample: the noise autocorrelation summed over the lag window
        "noise_correlation_volume": _volume(noise_acov, centre) if enough_line_free else None,
        "n_signal": int(region.sum()),
        "n_line_free": int(line_free.sum()),
        "sd_independent": dict(zip(names, np.sqrt(np.diag(independent_covariance(curvature))).tolist(), strict=True)),
        "sd_noise": sd(noise_meat),
        "inflation": _temperature(curvature, meat_matrix),
        "sd_hac": sd(_hac_meat(columns * residual[None], lags, taper)),
    }
    log.info(
        "error model: residual variance %.2f (noise %.2f) in %d voxels of signal; chi-square tempered by %.3g, "
        "errors inflated by %.3g in all (geometric mean of variances)",
        diagnostics["residual_variance"],
        diagnostics["noise_variance"],
        diagnostics["n_signal"],
        temperature,
        diagnostics["inflation"],
    )
    return ErrorModel(
        names=list(names),
        theta=theta.tolist(),
        steps=parts.steps.tolist(),
        curvature=curvature.tolist(),
        meat=meat_matrix.tolist(),
        noise_meat=noise_meat.tolist(),
        temperature=temperature,
        lags=list(lags),
        diagnostics=diagnostics,
    )


def _whitened_residual(
    model: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    data: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weights 1/noise (0 on blank voxels), the residual in units of the noise, and the galaxy's region: where
    the best model exceeds :data:`SIGNAL_LEVEL` of the noise, or the mask holds detected signal."""
    finite = np.isfinite(data)
    weight = np.where(finite, 1.0 / np.broadcast_to(noise, data.shape), 0.0)
    best = model(theta)
    residual = np.where(finite, (np.nan_to_num(data) - best) * weight, 0.0)
    region = finite & (best * weight > SIGNAL_LEVEL)
    if mask is not None:
        region |= finite & np.asarray(mask, dtype=bool)
    if not region.any():
        raise ModelOutsideCubeError("the best-fit model has no voxel above half the noise: no errors can be measured")
    return weight, residual, region


def _noise_alone(
    residual: np.ndarray,
    line_free: np.ndarray,
    columns: np.ndarray,
    curvature: np.ndarray,
    lags: tuple[int, int, int],
    taper: np.ndarray,
    beam_area_pixels: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The noise alone, away from the galaxy: its autocovariance, its part of the meat and the chain's temperature.
    When the galaxy fills the cube, noise correlated as the beam is assumed."""
    if line_free.sum() >= MIN_LINE_FREE:
        noise_acov = autocovariance(residual, line_free, lags)
        noise_meat = meat(columns, noise_acov * taper, lags)
        return noise_acov, noise_meat, _temperature(curvature, noise_meat)
    shape = tuple(2 * lag + 1 for lag in lags)
    return np.zeros(shape), curvature * max(beam_area_pixels, 1.0), max(beam_area_pixels, 1.0)


def _volume(acov: np.ndarray, centre: tuple[int, int, int]) -> float:
    """How many voxels share one independent noise sample (1 for white noise, the beam's area in pixels for
    beam-correlated noise), at least 1: the autocorrelation summed over the spatial lags at zero spectral lag, times
    its sum over the spectral lags at zero spatial lag (noise correlated by the beam in the sky and by the spectral
    response along the velocity axis). Summing all 3-D lags instead adds the estimation noise of thousands of
    near-zero lags: 11-14 instead of 18 for beam-correlated noise of an 18-pixel beam."""
    zero = float(acov[centre])
    if not zero > 0:
        return 1.0
    cv, cy, cx = centre
    spatial = float(acov[cv].sum()) / zero
    spectral = float(acov[:, cy, cx].sum()) / zero
    return max(spatial * spectral, 1.0)


def data_noise_volume(
    data: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray | None,
    *,
    beam_fwhm_pixels: float,
    beam_area_pixels: float,
) -> float:
    """Voxels per independent noise sample, measured on the data alone: the autocorrelation of ``data / noise`` in
    the voxels away from the detected signal (``mask`` dilated by a beam FWHM), summed as :func:`_volume` sums it.

    It is the same for every model fitted to a cube, so that information criteria of model families fitted to it
    compare: the error model's own measurement (:func:`error_model`) keeps away from each model's extent, and moved
    by 13% between three families fitted to NGC 4324, which moved their BIC by hundreds. With fewer than
    :data:`MIN_LINE_FREE` voxels free of signal, the beam's area in pixels (noise correlated as the beam).
    """
    finite = np.isfinite(data)
    whitened = np.where(finite, np.nan_to_num(data) / np.broadcast_to(noise, data.shape), 0.0)
    signal = np.zeros(data.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    line_free = finite & ~ndimage.binary_dilation(signal, iterations=max(1, int(round(beam_fwhm_pixels))))
    if line_free.sum() < MIN_LINE_FREE:
        return max(float(beam_area_pixels), 1.0)
    lags = lag_window(beam_fwhm_pixels, data.shape)
    return _volume(autocovariance(whitened, line_free, lags), lags)


def _jacobian_at(
    model: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    weight: np.ndarray,
    beam_area_pixels: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The whitened Jacobian at ``theta`` and its steps: first a small fraction of each bound's width, then the
    correlated-noise standard deviation that this first Jacobian gives (about the posterior's width)."""
    span = np.asarray(high, dtype=float) - np.asarray(low, dtype=float)
    columns = jacobian(model, theta, first_steps(span), low, high, weight)
    steps = width_steps(np.einsum("kvyx,lvyx->kl", columns, columns), span, beam_area_pixels)
    return jacobian(model, theta, steps, low, high, weight), steps


def first_steps(span: np.ndarray) -> np.ndarray:
    """Finite-difference half-widths for a first Jacobian, before the posterior's width is known: a thousandth of
    each bound's width."""
    return np.clip(1e-3 * np.asarray(span, dtype=float), 1e-9, None)


def width_steps(curvature: np.ndarray, span: np.ndarray, correlation: float) -> np.ndarray:
    """Finite-difference half-widths of about the posterior's width: the standard deviations that the curvature
    ``H`` of a first Jacobian gives for noise correlated over ``correlation`` voxels (the beam's area in pixels),
    within 1e-4 to 0.05 of each bound's width. A model made of cloudlets is rough on smaller scales (a few cloudlets
    jumping between pixels); steps this wide average over it."""
    sd = np.sqrt(np.diag(independent_covariance(curvature)) * max(correlation, 1.0))
    return np.clip(sd, 1e-4 * span, 0.05 * span)


def _hac_meat(scores: np.ndarray, lags: Sequence[int], taper: np.ndarray) -> np.ndarray:
    """The tapered autocovariance of the score fields (``J_k`` times the whitened residual), summed: the HAC meat,
    recorded for comparison."""
    n = scores.shape[0]
    out = np.zeros((n, n))
    for k in range(n):
        for m in range(k, n):
            out[k, m] = out[m, k] = float(np.sum(_correlate(scores[k], scores[m], lags) * taper))
    return out


def _lag1(acov: np.ndarray, centre: tuple[int, int, int], axis: int) -> float:
    """Correlation at lag 1 along ``axis`` (0 when the variance is 0)."""
    zero = float(acov[centre])
    if zero <= 0:
        return 0.0
    index = list(centre)
    index[axis] += 1
    if index[axis] >= acov.shape[axis]:
        return 0.0
    return float(acov[tuple(index)] / zero)


def adjust_samples(
    samples: np.ndarray,
    centre: np.ndarray,
    model: ErrorModel,
    low: np.ndarray,
    high: np.ndarray,
    prior_precision: np.ndarray | None = None,
) -> np.ndarray:
    """Map posterior samples of the tempered likelihood affinely onto the sandwich covariance.

    In the Gaussian approximation the tempered posterior has precision ``H / T + P0`` (``P0``: the Gaussian priors'
    precision) and the target has ``V^-1 + P0``; samples move as ``centre + C (theta - centre)`` with
    ``C = chol(target) chol(tempered)^-1``, which keeps the centre (the posterior median) and the posterior's shape.
    Parameters the data do not constrain are left as sampled. Adjusted samples are clipped to the bounds.
    """
    samples = np.asarray(samples, dtype=float)
    curvature = np.array(model.curvature)
    active, lower, inflation = _inflation(curvature, np.array(model.meat))
    n_active = int(active.sum())
    prior = np.zeros((n_active, n_active))
    if prior_precision is not None:
        prior = np.asarray(prior_precision, dtype=float)[np.ix_(active, active)]
    values, vectors = np.linalg.eigh(inflation)
    values = np.clip(values, 1e-12 * max(float(values.max()), 1e-300), None)
    # Precisions in the constrained subspace: H = L L^T; V^-1 = L K^-1 L^T.
    tempered_precision = lower @ lower.T / model.temperature + prior
    target_precision = lower @ ((vectors / values) @ vectors.T) @ lower.T + prior
    tempered_lower = np.linalg.cholesky(np.linalg.inv(tempered_precision))
    target_lower = np.linalg.cholesky(np.linalg.inv(target_precision))
    transform = target_lower @ np.linalg.inv(tempered_lower)
    adjusted = samples.copy()
    offsets = samples[:, active] - centre[active]
    adjusted[:, active] = centre[active] + offsets @ transform.T
    return np.clip(adjusted, low, high)
