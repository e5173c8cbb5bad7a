"""Quality flags of a fit: the things a survey user filters the catalogue on.

Each flag is a yes/no question about one galaxy's fit, recorded in ``summary.json`` (``flags``) and as the
catalogue's ``flag_<name>`` columns. A raised flag does not make the fit fail: it says where to look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .sanity import chi2_is_extreme

__all__ = ["FLAGS", "bounded_parameters", "fit_flags", "raised"]

#: Every flag and what it means.
FLAGS = {
    "not_converged": "the chain did not reach tau_factor autocorrelation times with a settled tau (max_steps)",
    "at_bound": "a free parameter's 16th-84th percentile range touches one of its bounds",
    "guess_far": "the posterior of pa, inc or vsys lies far from the first guess (a wrong start or a second mode)",
    "mismatch": "the residual in the galaxy's region has over twice the noise's variance: the model misses structure",
    "chi2_extreme": "the reduced chi-square is far from 1 (kinms_core.sanity.CHI2_REDUCED_RANGE): check the noise",
    "other_sources": "faint detections apart from the galaxy were blanked before the fit",
    "model_noise": "the model's Monte-Carlo noise stayed rough with the most cloudlets allowed: slow mixing",
}

# How close (fraction of the 16th-84th percentile range) a percentile must come to a bound to touch it.
_BOUND_FRACTION = 0.1
# A posterior median further than this many posterior widths and this absolute distance from the guess is "far".
_FAR_SIGMAS = 5.0
_FAR_ABSOLUTE = {"pa": 30.0, "inc": 20.0}
_FAR_CHANNELS = 2.0
# Residual variance over noise variance (whitened, in the galaxy's region) above which the model misses structure.
_MISMATCH_RATIO = 2.0


def _touches_bound(entry: Mapping[str, Any]) -> bool:
    """Whether the 16th-84th percentile range reaches a bound: it comes closer to it than a tenth of its own width
    (a posterior piled up against the bound), whatever the bound's distance in units of its whole range."""
    low, high = entry.get("min"), entry.get("max")
    if low is None or high is None or not high > low:
        return False
    margin = max(_BOUND_FRACTION * (entry["p84"] - entry["p16"]), 1e-9 * (high - low))
    return entry["p16"] - low <= margin or high - entry["p84"] <= margin


def bounded_parameters(parameters: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The free parameters whose 16th-84th percentile range touches a bound (those that raise ``at_bound``), in
    ``parameters``' order: a dispersion piled at 0 is often harmless, an inclination at its bound is not."""
    return [name for name, entry in parameters.items() if not entry.get("fixed") and _touches_bound(entry)]


def _far_from_guess(name: str, entry: Mapping[str, Any], channel_width: float) -> bool:
    guess = entry.get("guess")
    if guess is None:
        return False
    width = 0.5 * (entry["p84"] - entry["p16"])
    distance = abs(entry["median"] - guess)
    if name == "pa":
        distance = abs((entry["median"] - guess + 180.0) % 360.0 - 180.0)
    tolerance = _FAR_ABSOLUTE.get(name, _FAR_CHANNELS * channel_width)
    return distance > max(_FAR_SIGMAS * width, tolerance)


def fit_flags(
    parameters: Mapping[str, Mapping[str, Any]],
    *,
    converged: bool,
    chi2_reduced: float,
    channel_width: float,
    residual_variance: float | None = None,
    noise_variance: float | None = None,
) -> dict[str, bool]:
    """The flags a fit can tell about itself (``other_sources`` comes from the prepare stage).

    Parameters
    ----------
    parameters
        ``summary["parameters"]``: per parameter ``median``, ``p16``, ``p84``, ``fixed`` and, when free, ``min``,
        ``max`` and ``guess``.
    converged, chi2_reduced
        From the summary.
    channel_width
        km/s, the scale of "far" for vsys.
    residual_variance, noise_variance
        Whitened variances in and away from the galaxy's region (robust errors' diagnostics), when known.
    """
    free = {name: entry for name, entry in parameters.items() if not entry.get("fixed")}
    mismatch = (
        residual_variance is not None
        and noise_variance is not None
        and noise_variance > 0
        and residual_variance > _MISMATCH_RATIO * noise_variance
    )
    return {
        "not_converged": not converged,
        "at_bound": bool(bounded_parameters(parameters)),
        "guess_far": any(
            _far_from_guess(name, free[name], channel_width) for name in ("pa", "inc", "vsys") if name in free
        ),
        "mismatch": bool(mismatch),
        "chi2_extreme": chi2_is_extreme(chi2_reduced),
    }


def raised(flags: Mapping[str, bool], order: Sequence[str] = tuple(FLAGS)) -> list[str]:
    """Names of the raised flags, in :data:`FLAGS` order."""
    return [name for name in order if flags.get(name)]
