"""Fitting one galaxy: optimiser start, emcee sampling checkpointed to HDF5, convergence, summary and cubes.

The chain is written to ``chain.h5`` as it runs (emcee's HDF5 backend stores every step with the random state), so a
fit that is killed resumes from its last saved step when run again and, because every decision (convergence checks,
burn-in) is computed from the stored chain, ends with the same summary as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import emcee
import numpy as np
from tqdm import tqdm

from .errors import InputError, SettingsError
from .family_errors import SEARCH as FAMILY_SEARCH
from .family_errors import family_differences, family_terms
from .fitsio import obspars_header, obspars_wcs, write_cube
from .likelihood import (
    MODEL_NOISE_CHI2_PER_BEAM,
    FitData,
    LogPosterior,
    enough_clouds,
    offset_reach,
    parameters_to_sampling,
    sampling_to_parameters,
    sandwich_at,
)
from .memory import keep_freed_memory
from .optimise import maximise_refined
from .outer_rotation import emission_radius, outer_rotation, rotation_band
from .parametric import kinematic_centre
from .quality import bounded_parameters, fit_flags, raised
from .safe_files import atomic_path, read_json_object, write_json_atomic, write_text_atomic
from .sandwich import ErrorModel, adjust_samples, data_noise_volume, independent_covariance
from .settings import FIT_CLOUDS, FitSettings, Parameter, walker_count
from .sides import side_differences, widen_samples
from .starts import start_vectors
from .versions import software_versions
from .workers import process_context

__all__ = ["ChainFile", "autocorrelation_time", "bic", "fit_galaxy", "information_criterion", "noise_volume"]

log = logging.getLogger(__name__)

CHAIN_FILE = "chain.h5"
MAP_FILE = "map.json"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.fits"
RESIDUAL_FILE = "residual.fits"
POSTERIOR_FILE = "posterior.csv"
# How long a write of the chain waits for a reader of chain.h5 to close it
LOCK_WAIT_S = 60.0

#: The chain file's attribute that commits a step (:class:`ChainFile`).
CHECKPOINT_ATTRIBUTE = "checkpoint"

#: Radii of the rotation curve's band in summary.json (``rotation_curve``), out to the cube's half-width.
BAND_RADII = 64

#: A side's or a model family's Nelder-Mead gets this fraction of the optimiser's evaluations: it starts at the fit's
#: best point, and Levenberg-Marquardt (:func:`kinms_core.optimise.refine`) takes it the rest of the way.
FROM_BEST_SHARE = 8

_WORKER: LogPosterior | None = None


def _init_worker(fit_data: FitData, parameters: list[Parameter], settings: FitSettings, temperature: float) -> None:
    """Build the posterior (and its model, PSF transform and FFT plans) once per worker process."""
    global _WORKER
    _WORKER = _make_posterior(fit_data, parameters, settings, temperature)


def _worker_log_prob(u: np.ndarray) -> float:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.sampling_log_prob(u)


def _make_posterior(
    fit_data: FitData, parameters: list[Parameter], settings: FitSettings, temperature: float = 1.0
) -> LogPosterior:
    robust = settings.options.errors == "robust"
    return LogPosterior(
        fit_data,
        parameters,
        settings.spec,
        correction="none" if robust else settings.options.chi2_correction,
        noise_correlation="none" if robust else settings.options.noise_correlation,
        n_clouds=settings.n_clouds,
        seed=settings.options.seed,
        temperature=temperature,
    )


def autocorrelation_time(chain: np.ndarray) -> np.ndarray:
    """Integrated autocorrelation time (steps) per parameter of a ``(nsteps, nwalkers, ndim)`` chain, without
    emcee's reliability error (convergence is judged by the caller)."""
    return emcee.autocorr.integrated_time(chain, tol=0, quiet=True)


def _fingerprint(fit_data: FitData, parameters: list[Parameter], settings: FitSettings) -> str:
    """Hash of everything that determines the chain: a saved chain is only resumed when it matches."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(np.nan_to_num(fit_data.data, nan=-1e30)).tobytes())
    if fit_data.noise is not None:
        digest.update(np.ascontiguousarray(fit_data.noise).tobytes())
    digest.update(
        json.dumps(
            {
                "rms": fit_data.rms,
                "n_detected": fit_data.n_detected,
                "obspars": fit_data.obspars.to_dict(),
                "parameters": [asdict(p) for p in parameters],
                "spec": settings.spec.record(),
                # side and family errors are made after the chain and do not change it
                "options": {
                    k: v for k, v in asdict(settings.options).items() if k not in ("side_errors", "family_errors")
                },
                "n_clouds": settings.n_clouds,
            },
            sort_keys=True,
            default=str,
        ).encode()
    )
    return digest.hexdigest()


def _initial_walkers(
    centre: np.ndarray, posterior: LogPosterior, nwalkers: int, scale: float, seed: int, covariance: np.ndarray | None
) -> np.ndarray:
    """Walkers around ``centre``, reflected into the bounds: drawn from ``covariance`` (the chain's posterior in the
    Laplace approximation, :func:`laplace_covariance`) where it has a width, else in a small ball (``scale`` times
    each bound's width).

    A ball much smaller than the posterior costs the ensemble steps to expand, and the expansion shows as a slow
    trend in every walker, which lengthens the estimated autocorrelation time and with it the chain."""
    rng = np.random.default_rng(seed)
    span = posterior.high - posterior.low
    walkers = centre + scale * span * rng.standard_normal((nwalkers, centre.size))
    if covariance is not None:
        wide = np.diag(covariance) > 0
        if wide.any():
            sub = covariance[np.ix_(wide, wide)]
            walkers[:, wide] = rng.multivariate_normal(centre[wide], sub, size=nwalkers, method="eigh")
    walkers = np.where(walkers < posterior.low, 2 * posterior.low - walkers, walkers)
    walkers = np.where(walkers > posterior.high, 2 * posterior.high - walkers, walkers)
    return np.clip(walkers, posterior.low, posterior.high)


def laplace_covariance(errors: ErrorModel | None, posterior: LogPosterior) -> np.ndarray | None:
    """The covariance of the posterior that the chain samples, in the Laplace approximation at the best point:
    ``(H / s + P)^-1`` with ``H`` the likelihood's curvature, ``s`` what the chain divides the chi-square by and
    ``P`` the Gaussian priors' precision; zero rows for parameters neither constrains. None without an error
    model (scaled errors)."""
    if errors is None:
        return None
    precision = np.array(errors.curvature) / posterior.chi2_scale + posterior.prior_precision()
    return independent_covariance(precision)


class ChainFile(emcee.backends.HDFBackend):
    """emcee's HDF5 backend, waiting for whoever reads the chain file (a person watching a fit's progress, a
    monitoring script) to release HDF5's file lock, rather than failing the fit: h5py refuses to open a file for
    writing while another process has it open.

    Each step is committed by one attribute write (``checkpoint``: the step count, the accepted moves and the random
    state after it), after the step's chain row: emcee writes the accepted moves, the random state and the step
    count one after another, so a fit killed between them resumed with one step's moves counted twice or a random
    state ahead of its chain, and ended differently from an uninterrupted one. Files without a checkpoint read as
    emcee wrote them."""

    def _checkpoint(self) -> dict[str, Any] | None:
        with self.open() as f:
            raw = f[self.name].attrs.get(CHECKPOINT_ATTRIBUTE)
        return None if raw is None else json.loads(raw)

    def _committed(self) -> tuple[int, np.ndarray]:
        """The committed step count and accepted moves, from one read of the file."""
        saved = self._checkpoint()
        if saved is None:
            return int(super().iteration), super().accepted
        return saved["iteration"], np.array(saved["accepted"], dtype=float)

    @property
    def iteration(self) -> int:
        return self._committed()[0]

    @property
    def accepted(self) -> np.ndarray:
        return self._committed()[1]

    @property
    def random_state(self) -> list[Any] | None:
        saved = self._checkpoint()
        if saved is None:
            return super().random_state
        name, key, position, has_gauss, cached = saved["random_state"]
        return [name, np.array(key, dtype=np.uint32), position, has_gauss, cached]

    def grow(self, ngrow: int, blobs: Any) -> None:
        with self.open("a") as f:
            f[self.name].attrs["iteration"] = self.iteration  # emcee sizes the chain from it
        super().grow(ngrow, blobs)

    def save_step(self, state: Any, accepted: np.ndarray) -> None:
        self._check(state, accepted)
        iteration, before = self._committed()
        total = before + accepted
        name, key, position, has_gauss, cached = state.random_state
        with self.open("a") as f:
            group = f[self.name]
            group["chain"][iteration, :, :] = state.coords
            group["log_prob"][iteration, :] = state.log_prob
            if state.blobs is not None:
                group["blobs"][iteration, :] = state.blobs
            group.attrs[CHECKPOINT_ATTRIBUTE] = json.dumps(
                {
                    "iteration": iteration + 1,
                    "accepted": total.tolist(),
                    "random_state": [name, np.asarray(key).tolist(), int(position), int(has_gauss), float(cached)],
                }
            )
            group.attrs["iteration"] = iteration + 1  # for readers of emcee's own attributes
            group["accepted"][:] = total

    def open(self, mode: str = "r") -> Any:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return super().open(mode)
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    raise BlockingIOError(
                        exc.errno,
                        f"{self.filename} stayed locked by another process for {LOCK_WAIT_S:.0f} s: is another fit "
                        "of this galaxy writing to the same folder?",
                    ) from exc
                time.sleep(0.05)


def _open_backend(path: Path, fingerprint: str, nwalkers: int, ndim: int) -> tuple[ChainFile, bool]:
    """The chain file, resumed when it holds a chain of the same fit, else started afresh."""
    backend = ChainFile(str(path))
    if path.exists():
        try:
            with backend.open() as f:
                same = f.attrs.get("fingerprint") == fingerprint
            if same and backend.iteration > 0 and backend.shape == (nwalkers, ndim):
                log.info("resuming the chain in %s from step %d", path, backend.iteration)
                return backend, True
            log.info("%s holds another fit's chain: starting afresh", path)
        except BlockingIOError:
            raise  # in use elsewhere: neither resume from nor delete another process's chain
        except (OSError, KeyError, ValueError) as exc:
            log.warning("cannot read %s (%s): starting the chain afresh", path, exc)
        path.unlink()
    backend.reset(nwalkers, ndim)
    with backend.open("a") as f:
        f.attrs["fingerprint"] = fingerprint
    return backend, False


def _convergence(backend: emcee.backends.HDFBackend, options: Any) -> tuple[bool, np.ndarray]:
    """Converged when steps exceed ``tau_factor`` times the largest tau and tau changed by less than
    ``tau_tolerance`` (relative) since the previous check; both taus come from the stored chain."""
    steps = backend.iteration
    chain = backend.get_chain()
    tau = autocorrelation_time(chain[:steps])
    previous = steps - options.check_every
    if previous < options.check_every:
        return False, tau
    tau_before = autocorrelation_time(chain[:previous])
    settled = bool(np.all(np.abs(tau - tau_before) < options.tau_tolerance * tau))
    long_enough = steps > options.tau_factor * float(np.max(tau)) and steps >= options.min_steps
    return bool(settled and long_enough), tau


def fit_galaxy(
    fit_data: FitData,
    settings: FitSettings,
    outdir: str | Path,
    *,
    processes: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit one galaxy and write ``summary.json``, ``chain.h5`` and ``map.json`` into ``outdir``.

    Parameters
    ----------
    fit_data
        Data cube, noise, detected-voxel count, first guesses and bounds.
    settings
        Validated settings (:func:`kinms_core.settings.load_settings`).
    outdir
        Output folder (created).
    processes
        Worker processes for the likelihood (each builds its own model once).
    progress
        Show a progress bar on stderr.

    Returns
    -------
    dict
        The summary: per parameter median, 16th and 84th percentiles, MAP and whether fixed; acceptance fraction,
        autocorrelation times, steps, convergence, reduced chi-square, N detected, RMS and inflated RMS, runtime,
        evaluations, seed and software versions.
    """
    start_time = time.perf_counter()
    keep_freed_memory()  # before any worker is forked: they inherit it
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    options = settings.options
    extent = fit_data.emission_extent
    settings = settings.for_data(fit_data.guesses, extent)
    _warn_rings_beyond_gas(fit_data.galaxy, settings, extent)
    parameters = settings.resolved(fit_data.guesses, fit_data.bounds)
    settings, model_noise = _with_enough_clouds(fit_data, settings, parameters)
    posterior = _make_posterior(fit_data, parameters, settings)
    ndim = len(posterior.free)
    nwalkers = walker_count(options, ndim)
    if nwalkers < 2 * ndim:
        raise SettingsError(f"fit.nwalkers ({nwalkers}) must be at least twice the free parameters ({ndim})")
    fingerprint = _fingerprint(fit_data, parameters, settings)
    best, optimiser_calls, errors = _start_point(
        fit_data, posterior, outdir / MAP_FILE, fingerprint, settings, processes
    )
    log.info("%s: start %s", fit_data.galaxy, _format(posterior.free_names, best))
    posterior.temperature = errors.temperature if errors is not None else 1.0

    backend, resumed = _open_backend(outdir / CHAIN_FILE, fingerprint, nwalkers, ndim)
    start_covariance = laplace_covariance(errors, posterior)
    chain_run = _ChainRun(fit_data, parameters, settings, posterior, backend, processes, progress, start_covariance)
    converged, tau = chain_run.sample(None if resumed else best)

    summary, samples = _summarise(fit_data, posterior, backend, tau, converged, best, options, errors)
    summary["model_noise_chi2"] = model_noise
    limit = MODEL_NOISE_CHI2_PER_BEAM * max(fit_data.obspars.beam_area_pixels, 1.0)
    summary["flags"]["model_noise"] = model_noise is not None and model_noise > limit
    _write_products(fit_data, posterior, summary, samples, outdir)
    summary["evaluations"] = int(optimiser_calls + nwalkers * backend.iteration)
    summary["optimiser_evaluations"] = optimiser_calls
    summary["runtime_s"] = time.perf_counter() - start_time
    summary["resumed"] = resumed
    write_text_atomic(outdir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    log.info(
        "%s: %s after %d steps (tau %.0f), acceptance %.2f, reduced chi2 %.2f, %.0f s; flags: %s",
        fit_data.galaxy,
        "converged" if converged else "NOT converged",
        backend.iteration,
        np.max(tau),
        summary["acceptance"],
        summary["chi2_reduced"],
        summary["runtime_s"],
        ", ".join(raised(summary["flags"])) or "none",
    )
    if summary["flags"].get("at_bound"):
        log.warning(
            "%s: posterior at a bound: %s (at a physical limit, e.g. a dispersion at 0, the data resolve none; "
            "otherwise widen that parameter's min/max in the settings)",
            fit_data.galaxy,
            ", ".join(bounded_parameters(summary["parameters"])),
        )
    return summary


def _warn_rings_beyond_gas(galaxy: str, settings: FitSettings, extent: float | None) -> None:
    """Warn when a ring-wise warp was given rings beyond ``extent``, how far the signal mask reaches from the guessed
    centre (:attr:`kinms_core.likelihood.FitData.emission_extent`; None: no mask): their turns are extrapolated from
    the gas inside and pile at their bounds (the auto radii end at the mask's reach,
    :meth:`kinms_core.settings.FitSettings.for_data`)."""
    if settings.spec.warp != "rings" or not settings.spec.warp_radii or extent is None:
        return
    beyond = [radius for radius in settings.spec.warp_radii[1:] if radius > extent]
    if beyond:
        log.warning(
            '%s: warp ring radii %s lie beyond the signal mask, which reaches %.1f" from the guessed centre: their '
            "turns are extrapolated and may pile at their bounds; give model.warp_radii (arcsec) within it",
            galaxy,
            ", ".join(f'{radius:.1f}"' for radius in beyond),
            extent,
        )


def _with_enough_clouds(
    fit_data: FitData, settings: FitSettings, parameters: list[Parameter]
) -> tuple[FitSettings, float | None]:
    """The settings with ``n_clouds`` chosen (:func:`~kinms_core.likelihood.enough_clouds`) when it is ``auto``, and
    the model's Monte-Carlo noise (chi-square) with that many cloudlets (None when the settings fix it)."""
    if settings.n_clouds is not None:
        return settings, None
    n_clouds, model_noise = enough_clouds(
        fit_data,
        settings.spec,
        {p.name: p.guess for p in parameters},
        start=FIT_CLOUDS,
        seed=settings.options.seed,
        max_offset=offset_reach(parameters),
    )
    return replace(settings, n_clouds=n_clouds), model_noise


def _start_point(
    fit_data: FitData,
    posterior: LogPosterior,
    map_path: Path,
    fingerprint: str,
    settings: FitSettings,
    processes: int,
) -> tuple[np.ndarray, int, ErrorModel | None]:
    """The optimiser's best point, its evaluations and the error model there (robust errors, with the sides fitted
    apart when ``side_errors`` and the extending families when ``family_errors``): reused from ``map.json`` when it
    was made for the same data and settings, else made and saved there."""
    options = settings.options
    saved = _saved_start(map_path)
    if saved.get("fingerprint") == fingerprint:
        log.info("%s: reusing the optimiser's start from %s", fit_data.galaxy, map_path)
        best, optimiser_calls = np.array(saved["theta"]), int(saved["evaluations"])
        errors = ErrorModel.from_dict(saved["error_model"]) if saved.get("error_model") else None
    else:
        best, optimiser_calls = _optimise(fit_data, posterior, options.optimiser_evaluations)
        errors = sandwich_at(fit_data, posterior, best) if options.errors == "robust" else None
    if errors is not None and options.side_errors and not errors.sides:
        errors.sides = _sides(fit_data, posterior, best, options, processes)
    elif errors is not None and not options.side_errors:
        errors.sides = {}
    if errors is not None and options.family_errors and errors.families.get("search") != FAMILY_SEARCH:
        errors.families = _families(fit_data, settings, posterior, best, errors.standard_deviations, processes)
    elif errors is not None and not options.family_errors:
        errors.families = {}
    if errors is not None and errors.families:  # a saved search gets the current terms
        free_values = dict(zip(posterior.free_names, best.tolist(), strict=True))
        errors.families |= family_terms(errors.families, free_values, errors.standard_deviations)
    record = {"fingerprint": fingerprint, "theta": best.tolist(), "evaluations": optimiser_calls}
    record["error_model"] = errors.to_dict() if errors is not None else None
    if record != {k: saved.get(k) for k in record}:
        write_json_atomic(map_path, record)
    return best, optimiser_calls, errors


def _optimise(fit_data: FitData, posterior: LogPosterior, evaluations: int) -> tuple[np.ndarray, int]:
    """The optimiser's best point from the guesses and any start its families need
    (:func:`kinms_core.starts.start_values`), and its evaluations."""
    vectors = start_vectors(posterior, posterior.guess, fit_data.guesses.get("scalerad"))
    log.info(
        "%s: optimising from the guesses (%d free parameters, %d start(s))",
        fit_data.galaxy,
        len(posterior.free),
        len(vectors),
    )
    best, calls, index = maximise_refined(posterior, vectors, evaluations, fit_data.obspars.beam_area_pixels)
    if index:
        log.info(
            "%s: the best point came from the start at %s",
            fit_data.galaxy,
            _format(posterior.free_names, vectors[index]),
        )
    return best, calls


def _sides(
    fit_data: FitData, posterior: LogPosterior, best: np.ndarray, options: Any, processes: int
) -> dict[str, dict[str, float]]:
    """The approaching and the receding side fitted apart from ``best`` (:func:`kinms_core.sides.side_differences`),
    each with an eighth of the optimiser's Nelder-Mead evaluations and then refined, on the fit's worker processes."""
    start = time.perf_counter()
    sides = side_differences(
        fit_data,
        posterior.parameters,
        posterior.model.spec,
        posterior.values(best),
        n_clouds=posterior.model.cube_model.n_clouds,
        seed=options.seed,
        max_evaluations=max(options.optimiser_evaluations // FROM_BEST_SHARE, 1),
        processes=processes,
    )
    if sides:
        log.info(
            "%s: the two sides differ by (half) %s, %.0f s",
            fit_data.galaxy,
            ", ".join(f"{k} {v:.3g}" for k, v in sides["half_difference"].items()),
            time.perf_counter() - start,
        )
    return sides


def _families(
    fit_data: FitData,
    settings: FitSettings,
    posterior: LogPosterior,
    best: np.ndarray,
    fit_widths: dict[str, float],
    processes: int,
) -> dict[str, Any]:
    """The families that extend the fit's maximised from ``best`` (:func:`kinms_core.family_errors.family_differences`)
    on ``processes`` workers, each with an eighth of the optimiser's evaluations (per start) and refined, as each
    side's fit."""
    start = time.perf_counter()
    families = family_differences(
        fit_data,
        settings,
        posterior,
        best,
        noise_volume(fit_data),
        fit_widths=fit_widths,
        max_evaluations=max(settings.options.optimiser_evaluations // FROM_BEST_SHARE, 1),
        processes=processes,
    )
    log.info(
        "%s: model families' Akaike weights (over 0.01) %s; their spread %s; their widths add %s, %.0f s",
        fit_data.galaxy,
        ", ".join(f"{k} {v:.2f}" for k, v in families["weights"].items() if v >= 0.01),
        ", ".join(f"{k} {v:.3g}" for k, v in families["spread"].items()),
        ", ".join(f"{k} {v:.3g}" for k, v in families["within"].items()),
        time.perf_counter() - start,
    )
    return families


@dataclass
class _ChainRun:
    """The emcee run of one fit: walkers started around the best point (or resumed from the backend), stopped
    when converged (:func:`_convergence`, checked every ``check_every`` steps) or at ``max_steps``."""

    fit_data: FitData
    parameters: list[Parameter]
    settings: FitSettings
    posterior: LogPosterior
    backend: emcee.backends.HDFBackend
    processes: int
    progress: bool
    start_covariance: np.ndarray | None = None

    def sample(self, best: np.ndarray | None) -> tuple[bool, np.ndarray]:
        """Run the chain from walkers around ``best`` (None: resume); returns (converged, tau)."""
        pool = self._pool()
        try:
            function = _worker_log_prob if pool is not None else self.posterior.sampling_log_prob
            nwalkers, ndim = self.backend.shape
            moves = [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
            sampler = emcee.EnsembleSampler(nwalkers, ndim, function, moves=moves, backend=self.backend, pool=pool)
            state = None
            if best is not None:
                options = self.settings.options
                sampler.random_state = np.random.RandomState(options.seed).get_state()
                walkers = _initial_walkers(
                    best, self.posterior, nwalkers, options.init_scale, options.seed, self.start_covariance
                )
                state = parameters_to_sampling(walkers, self.posterior.free_names)
            converged, tau = self._steps(sampler, state)
            if not converged:
                converged, tau = _convergence(self.backend, self.settings.options)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        return converged, tau

    def _pool(self):
        if self.processes <= 1:
            return None
        initargs = (self.fit_data, self.parameters, self.settings, self.posterior.temperature)
        return process_context().Pool(self.processes, initializer=_init_worker, initargs=initargs)

    def _steps(self, sampler: emcee.EnsembleSampler, state: Any) -> tuple[bool, np.ndarray]:
        """Steps in blocks of ``check_every`` with a progress bar, until converged or ``max_steps``."""
        options, backend = self.settings.options, self.backend
        converged, tau = False, np.full(backend.shape[1], np.nan)
        bar = tqdm(
            total=options.max_steps,
            initial=backend.iteration,
            desc=f"{self.fit_data.galaxy} emcee",
            unit="step",
            disable=not self.progress,
            file=sys.stderr,
            mininterval=2.0,
        )
        with bar:
            while backend.iteration < options.max_steps:
                if backend.iteration and backend.iteration % options.check_every == 0:
                    converged, tau = _convergence(backend, options)
                    if converged:
                        break
                todo = min(
                    options.check_every - backend.iteration % options.check_every,
                    options.max_steps - backend.iteration,
                )
                state = sampler.run_mcmc(state, todo, progress=False)
                bar.update(todo)
                acceptance = float(np.mean(backend.accepted) / backend.iteration)
                bar.set_postfix(tau="?" if np.isnan(tau).all() else f"{np.max(tau):.0f}", acc=f"{acceptance:.2f}")
        return converged, tau


def _systematic_terms(errors: ErrorModel) -> dict[str, float]:
    """What the errors gain in quadrature per parameter: half the two sides' difference, the model families' spread
    and what their own widths add, each where it was made."""
    sides = errors.sides.get("half_difference", {}) if errors.sides else {}
    spread = errors.families.get("spread", {}) if errors.families else {}
    within = errors.families.get("within", {}) if errors.families else {}
    return {
        name: math.hypot(sides.get(name, 0.0), spread.get(name, 0.0), within.get(name, 0.0))
        for name in {*sides, *spread, *within}
    }


def _saved_start(map_path: Path) -> dict[str, Any]:
    """The optimiser's saved start, or nothing when there is none or it cannot be read (then it is made again)."""
    if not map_path.exists():
        return {}
    try:
        return read_json_object(map_path, remedy="optimising again")
    except InputError as exc:
        log.warning("%s", exc)
        return {}


def _format(names: list[str], theta: np.ndarray) -> str:
    return ", ".join(f"{n}={v:.4g}" for n, v in zip(names, theta, strict=True))


def _summarise(
    fit_data: FitData,
    posterior: LogPosterior,
    backend: emcee.backends.HDFBackend,
    tau: np.ndarray,
    converged: bool,
    optimum: np.ndarray,
    options: Any,
    errors: ErrorModel | None,
) -> tuple[dict[str, Any], np.ndarray]:
    steps = int(backend.iteration)
    burn_in, thin, samples = _posterior_samples(backend, tau, posterior.free_names, options.burn_in_tau)
    log_prob = backend.get_log_prob(flat=True)
    chain = sampling_to_parameters(backend.get_chain(flat=True), posterior.free_names)
    best_sample = chain[int(np.argmax(log_prob))]
    map_theta = best_sample if posterior(best_sample) >= posterior(optimum) else optimum

    median = np.median(samples, axis=0)
    if errors is not None:
        samples = adjust_samples(
            samples, median, errors, posterior.low, posterior.high, prior_precision=posterior.prior_precision()
        )
    outer, band = _rotation(fit_data, posterior, samples, median, optimum, errors)
    if errors is not None:
        extra = _systematic_terms(errors)
        if extra:
            samples = widen_samples(samples, median, posterior.free_names, extra, posterior.low, posterior.high)
    parameters = _parameter_table(posterior, median, np.percentile(samples, [16.0, 84.0], axis=0), map_theta)
    n_free = len(posterior.free)
    chi2 = posterior.chi2(median)
    values = posterior.values(median)
    op = fit_data.obspars
    centre = obspars_wcs(op).celestial.pixel_to_world(*kinematic_centre(op, values))
    summary = {
        "galaxy": fit_data.galaxy,
        "parameters": parameters,
        "free_parameters": posterior.free_names,
        "sampling": "chain.h5 holds v*sin(inc) for rotation velocities when inc is free (sampling_to_parameters)",
        "acceptance": float(np.mean(backend.accepted) / steps),
        "tau": {name: float(t) for name, t in zip(posterior.free_names, tau, strict=True)},
        "tau_max": float(np.max(tau)),
        "steps": int(steps),
        "burn_in": int(burn_in),
        "thin": int(thin),
        "n_samples": int(samples.shape[0]),
        "converged": bool(converged),
        "chi2": chi2,
        "chi2_reduced": chi2 / max(posterior.n_voxels - n_free, 1),
        "model": posterior.model.spec.label,
        "spec": posterior.model.spec.record(),
        "n_free": n_free,
        "n_clouds": posterior.model.cube_model.n_clouds,
        **information_criterion(posterior, map_theta, noise_volume(fit_data)),
        "n_voxels": posterior.n_voxels,
        "n_detected": int(fit_data.n_detected),
        "rms": posterior.rms,
        "noise_model": "map" if fit_data.noise is not None else "uniform",
        "errors": options.errors,
        "likelihood": _likelihood_record(posterior, options, errors),
        "outer_rotation": outer,
        "rotation_curve": band,
        "beam_pixels": fit_data.obspars.beam_area_pixels,
        "nwalkers": int(backend.shape[0]),
        "seed": options.seed,
        "ra": float(centre.ra.deg),
        "dec": float(centre.dec.deg),
        "versions": software_versions(),
    }
    diagnostics = errors.diagnostics if errors is not None else {}
    summary["flags"] = fit_flags(
        parameters,
        converged=bool(converged),
        chi2_reduced=summary["chi2_reduced"],
        channel_width=op.dv,
        residual_variance=diagnostics.get("residual_variance"),
        noise_variance=diagnostics.get("noise_variance"),
    )
    return summary, samples


def _rotation(
    fit_data: FitData,
    posterior: LogPosterior,
    samples: np.ndarray,
    median: np.ndarray,
    optimum: np.ndarray,
    errors: ErrorModel | None,
) -> tuple[dict[str, Any] | None, dict[str, list[float]] | None]:
    """The rotation at the radius along the major axis that holds most of the detected flux, and the rotation
    curve's band at :data:`BAND_RADII` radii out to the cube's half-width, each with the velocity's own side and
    family terms (:func:`kinms_core.outer_rotation.outer_rotation`, :func:`kinms_core.outer_rotation.rotation_band`);
    None for both without a rotation velocity, and for the first without flux."""
    names = posterior.free_names
    if not any(name == "vflat" or name.startswith("vrot_") for name in names):
        return None, None
    values = posterior.values(median)
    fixed = {name: value for name, value in values.items() if name not in names}
    terms = {
        "best": posterior.values(optimum),
        "sides": errors.sides if errors is not None else None,
        "families": errors.families if errors is not None else None,
    }
    op = fit_data.obspars
    radii = np.linspace(0.0, 0.5 * max(op.nx, op.ny) * op.cellsize, BAND_RADII)
    band = rotation_band(posterior.model.spec, samples, names, fixed, radii, **terms)
    radius = emission_radius(fit_data.data, fit_data.mask, op, values)
    if not math.isfinite(radius):
        return None, band
    return outer_rotation(posterior.model.spec, samples, names, fixed, radius, **terms), band


def _posterior_samples(
    backend: emcee.backends.HDFBackend, tau: np.ndarray, names: list[str], burn_in_tau: float
) -> tuple[int, int, np.ndarray]:
    """Burn-in (``burn_in_tau`` autocorrelation times, at most half the chain), thinning (half the shortest tau)
    and the samples that remain, in the parameters' units; a very short chain keeps its second half, unthinned."""
    steps = int(backend.iteration)
    finite = bool(np.all(np.isfinite(tau)))
    burn_in = int(math.ceil(burn_in_tau * float(np.max(tau)))) if finite else steps // 2
    burn_in = int(min(burn_in, steps // 2))
    thin = max(1, int(0.5 * float(np.min(tau)))) if finite else 1
    samples = sampling_to_parameters(backend.get_chain(discard=burn_in, thin=thin, flat=True), names)
    if samples.shape[0] < 2 * samples.shape[1]:
        samples = sampling_to_parameters(backend.get_chain(discard=steps // 2, flat=True), names)
    return burn_in, thin, samples


def _parameter_table(
    posterior: LogPosterior, median: np.ndarray, percentiles: np.ndarray, map_theta: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Per parameter: median, 16th and 84th percentiles, MAP, whether fixed, and a free one's bounds and guess."""
    low, high = percentiles
    table: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(posterior.parameters):
        if p.fixed:
            table[p.name] = {"median": p.guess, "p16": p.guess, "p84": p.guess, "map": p.guess, "fixed": True}
            continue
        k = posterior.free.index(i)
        table[p.name] = {
            "median": float(median[k]),
            "p16": float(low[k]),
            "p84": float(high[k]),
            "map": float(map_theta[k]),
            "fixed": False,
            "min": p.min,
            "max": p.max,
            "guess": p.guess,
        }
    return table


def noise_volume(fit_data: FitData) -> float:
    """Voxels per independent noise sample of the cube (:func:`kinms_core.sandwich.data_noise_volume`): one value
    for every model family fitted to it."""
    op = fit_data.obspars
    return data_noise_volume(
        fit_data.data,
        fit_data.noise_cube,
        fit_data.mask,
        beam_fwhm_pixels=op.beam[0] / op.cellsize,
        beam_area_pixels=op.beam_area_pixels,
    )


def information_criterion(posterior: LogPosterior, best: np.ndarray, volume: float) -> dict[str, float]:
    """The BIC (:func:`bic`) of ``posterior``'s model at its best point, its free parameters counted with the price
    of a surface brightness from the data (``map_parameters``, :func:`kinms_core.surface.map_parameters`)."""
    criterion = bic(posterior.chi2(best), len(posterior.free) + posterior.map_parameters, posterior.n_voxels, volume)
    return {**criterion, "map_parameters": posterior.map_parameters}


def bic(chi2: float, n_free: float, n_voxels: int, volume: float) -> dict[str, float]:
    """BIC = chi2_max / c + k ln(N / c) (Schwarz 1978) of a fit's chi-square at its best point, ``k`` free parameters
    (a map from the data counts as its independent beams) and ``N`` voxels, with ``c`` the voxels per independent
    noise sample (``volume``: the data's noise correlation volume, the same for every family), so that correlated
    voxels count once: lower is better, between model families fitted to the same cube. Returns the BIC and ``N / c``
    (``n_effective``)."""
    n_effective = n_voxels / volume
    return {"bic": chi2 / volume + n_free * math.log(n_effective), "n_effective": n_effective}


def _likelihood_record(posterior: LogPosterior, options: Any, errors: ErrorModel | None) -> dict[str, Any]:
    """How the likelihood and the errors were modelled, for summary.json."""
    if errors is None:
        return {
            "errors": "scaled",
            "chi2_correction": options.chi2_correction,
            "noise_correlation": options.noise_correlation,
            "rms_inflated": posterior.rms_inflated,
            "chi2_scale": posterior.chi2_scale,
        }
    return {
        "errors": "robust",
        "temperature": errors.temperature,
        "chi2_scale": posterior.chi2_scale,
        "lags": errors.lags,
        "sandwich_sd": errors.standard_deviations,
        **errors.diagnostics,
        "sides": errors.sides,
        "families": errors.families,
    }


def _write_products(
    fit_data: FitData, posterior: LogPosterior, summary: dict[str, Any], samples: np.ndarray, outdir: Path
) -> None:
    """Best-fit (posterior median) model and residual cubes with the data's WCS, and the posterior samples."""
    median = np.array([summary["parameters"][name]["median"] for name in posterior.free_names])
    model = posterior.model_cube(median)
    header = fit_data.header if fit_data.header is not None else obspars_header(fit_data.obspars)
    history = [f"kinms_core {software_versions()['kinms_core']} best fit (posterior medians) of {fit_data.galaxy}"]
    write_cube(outdir / MODEL_FILE, model, header=header, history=history)
    write_cube(outdir / RESIDUAL_FILE, fit_data.data - model, header=header, history=["data minus " + history[0]])
    with atomic_path(outdir / POSTERIOR_FILE) as tmp:
        np.savetxt(tmp, samples, delimiter=",", header=",".join(posterior.free_names), comments="", fmt="%.10g")
