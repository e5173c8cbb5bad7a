"""The KinMS cloudlet model of a rotating gas disc, observed as a beam-convolved data cube.

The algorithm is KinMS's (Davis et al. 2013), with its geometry conventions: cloudlet radii follow the
surface-brightness profile through the inverse of its normalised cumulative integral of ``2 pi r Sigma(r)``;
azimuths are uniform; a disc thickness draws heights from an exponential with random sign; line-of-sight velocities
are ``sigma_term - v_circ(r) cos(theta) sin(inc)``; positions are inclined about the x axis, rotated by
``90 - PA`` in the sky plane, binned to the nearest pixel and channel around the cube centre ``(n / 2)`` plus the
phase-centre and velocity offsets; each channel is convolved with the beam (centred, as KinMS's, at ``n / 2``, so
on an odd-sized axis the convolved disc lies half a pixel further, see ``ObsPars.centre_pixel``) and the cube is
scaled so that ``sum(cube) * dv / sum(psf) == int_flux`` (Jy/beam).

What differs is how the work is done: the uniform draws are a scrambled Sobol sequence (quasi-random), which reaches
KinMS's Monte-Carlo accuracy with several times fewer cloudlets; draws are sorted by radius once so that every
profile lookup is a vectorised interpolation over a monotonic array; the trigonometry of fixed azimuths is
precomputed; and the beam convolution is a planned real FFT (pyFFTW) with zero padding, so it is linear like
KinMS's direct convolution.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft
from scipy.integrate import cumulative_trapezoid
from scipy.special import ndtri
from scipy.stats import qmc

from .beam import BeamConvolver, gaussian_psf
from .errors import ModelOutsideCubeError
from .obspars import ObsPars

__all__ = ["DEFAULT_CLOUDS", "Bisymmetric", "CubeModel", "SkyClouds", "analytic_spread", "model_cube"]

log = logging.getLogger(__name__)

# Deprojection of sky-fixed cloudlets divides by cos(inc): near edge-on it is held at that of 88.5 degrees.
_MIN_COS_INC = math.cos(math.radians(88.5))

# 2^17 quasi-random cloudlets come closer to a converged KinMS cube than KinMS's default 5e5 random ones on every
# configuration of tests/test_parity_kinms.py (0.3-1.0% against 0.9-2.1% relative L2); 2^16 only ties where a large
# velocity dispersion dominates the noise.
DEFAULT_CLOUDS = 2**17

ArrayLike = float | Sequence[float] | np.ndarray


def _profile(name: str, value: ArrayLike, radius: np.ndarray, radius_name: str) -> np.ndarray:
    """A scalar (returned as a 1-element array) or a profile along ``radius``, checked to be finite."""
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D profile, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got non-finite values")
    if arr.size > 1 and arr.size != radius.size:
        raise ValueError(
            f"{name} has {arr.size} values but {radius_name} has {radius.size}: give a scalar or one value per "
            f"{radius_name} radius"
        )
    return arr


def _radius_grid(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be a 1-D radius grid of at least 2 values (arcsec)")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite, non-negative radii (arcsec)")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return arr


class _AtRadius:
    """Profiles along one radius grid (one value: a constant) read at the cloudlets' radii ``r``. When the grid is
    evenly spaced, as :func:`~kinms_core.parametric.radius_grid`'s, each cloudlet's place on it is found once and
    every profile is then one gather and one multiply-add per cloudlet; np.interp's binary search per point and
    profile took most of a warped model's extra time (four profiles: sine and cosine of PA and inclination) and 40%
    of a model of unsorted sky-fixed cloudlets. Other grids use np.interp."""

    def __init__(self, grid: np.ndarray, r: np.ndarray) -> None:
        self._grid, self._r = grid, r
        self._index: np.ndarray | None = None
        step = (grid[-1] - grid[0]) / (grid.size - 1)
        if grid.size >= 3 and np.ptp(np.diff(grid)) <= 1e-9 * step:
            last = grid.size - 1
            position = r - grid[0]
            position *= 1.0 / step
            np.clip(position, 0.0, last, out=position)
            self._index = position.astype(np.intp)
            np.minimum(self._index, last - 1, out=self._index)
            position -= self._index
            self._fraction = position

    def __call__(self, profile: np.ndarray) -> np.ndarray | float:
        """``np.interp(r, grid, profile)``; a float for a one-value profile."""
        if profile.size == 1:
            return float(profile[0])
        if self._index is None:
            return np.interp(self._r, self._grid, profile)
        slope = np.diff(profile)  # the profile's change per grid step: one gather per point instead of two
        values = profile.take(self._index)
        values += slope.take(self._index) * self._fraction
        return values

    def sin_cos(self, angle: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float]:
        """Sine and cosine of an angle profile (degrees) at the radii: a profile's are interpolated from their
        values on the grid (a warp's trigonometry on the grid, not per cloudlet; the grid is a third of a pixel
        fine, so the difference is of order 1e-7)."""
        radians = np.radians(angle)
        return self(np.sin(radians)), self(np.cos(radians))


def analytic_spread(gas_sigma: ArrayLike, dv: float) -> float | None:
    """The dispersion to apply as an exact spectral convolution instead of random cloudlet velocities: a constant
    ``gas_sigma`` of at least a channel (then the difference between the channel shares' shapes is negligible), else
    None. Random velocities over several channels are most of a finely sampled cube's Monte-Carlo noise."""
    values = np.atleast_1d(np.asarray(gas_sigma, dtype=float))
    if values.size != 1 or not np.isfinite(values[0]) or values[0] < dv:
        return None
    return float(values[0])


@dataclass(frozen=True)
class Bisymmetric:
    """A bisymmetric (m = 2) flow, as KinMS's ``radial_motion.bisymmetric_flow`` (Spekkens & Sellwood 2007): tangential
    and radial amplitudes ``v2t``, ``v2r`` (km/s; scalars or profiles along ``vel_rad``) and the angle ``phib`` (deg,
    in the disc plane from the azimuth origin) of the bar's major axis. The line-of-sight velocity changes by
    ``-(v2t cos(2 theta_b) cos(theta) + v2r sin(2 theta_b) sin(theta)) sin(inc)``, ``theta_b = theta - phib``."""

    v2t: ArrayLike = 0.0
    v2r: ArrayLike = 0.0
    phib: float = 0.0


def _line_of_sight(
    at_radius: _AtRadius,
    cos_phase: np.ndarray,
    sin_phase: np.ndarray,
    sin_inc: np.ndarray | float,
    gauss: np.ndarray,
    vel_rad: np.ndarray,
    circular: np.ndarray,
    gas_sigma: np.ndarray,
    radial_vel: np.ndarray,
    bisymmetric: Bisymmetric | None,
) -> np.ndarray:
    """Line-of-sight velocities (km/s, relative to systemic) of cloudlets at disc-plane radii ``at_radius`` and
    azimuth (``cos_phase``, ``sin_phase``) with circular velocities ``circular`` (profiles along ``vel_rad``), with
    KinMS's signs: rotation ``-v_circ cos(theta) sin(inc)``, dispersion ``gauss * sigma``, radial motion ``+v_rad
    sin(theta) sin(inc)`` (KinMS's ``radial_motion.pure_radial``: whether a positive ``v_rad`` is an outflow or an
    inflow depends on which side of the disc is nearer, which the kinematics alone do not tell) and an optional
    bisymmetric flow."""
    los_vel = circular * cos_phase
    los_vel *= sin_inc
    np.negative(los_vel, out=los_vel)
    if np.any(gas_sigma > 0):
        los_vel += gauss * at_radius(gas_sigma)
    if np.any(radial_vel != 0):
        los_vel += at_radius(radial_vel) * sin_phase * sin_inc
    if bisymmetric is not None:
        v2t = at_radius(_profile("v2t", bisymmetric.v2t, vel_rad, "vel_rad"))
        v2r = at_radius(_profile("v2r", bisymmetric.v2r, vel_rad, "vel_rad"))
        phib = math.radians(bisymmetric.phib)
        # cos(2 theta_b) and sin(2 theta_b) from the azimuth's cosine and sine, without arctan2
        cos2, sin2 = cos_phase * cos_phase - sin_phase * sin_phase, 2.0 * sin_phase * cos_phase
        cos2b = cos2 * math.cos(2 * phib) + sin2 * math.sin(2 * phib)
        sin2b = sin2 * math.cos(2 * phib) - cos2 * math.sin(2 * phib)
        los_vel -= (v2t * cos2b * cos_phase + v2r * sin2b * sin_phase) * sin_inc
    return los_vel


@dataclass(frozen=True)
class SkyClouds:
    """Cloudlets fixed on the sky (arcsec from the cube's model centre, ``ObsPars.centre_pixel``, along +x, +y),
    e.g. sampled from an observed moment-0 map: the surface brightness then comes from the data, and a fit measures
    only the kinematics and the geometry (the sky sampling of KinMS_fitter and M. D. Smith's skySampler). ``gauss``
    holds each cloudlet's standard normal deviate of its dispersion velocity, drawn with its position."""

    x: np.ndarray
    y: np.ndarray
    gauss: np.ndarray

    @classmethod
    def from_map(cls, surface: np.ndarray, obspars: ObsPars, n_clouds: int, seed: int = 0) -> SkyClouds:
        """``n_clouds`` cloudlets distributed as the non-negative ``(ny, nx)`` map ``surface`` (scrambled Sobol
        draws: a pixel by the map's cumulative sum, a position uniformly within it, and the deviate of its dispersion
        velocity from the same draw; paired with the model's own deviates, which are ordered by another sequence's
        radial coordinate, the velocities of a pixel's cloudlets were correlated and the Monte-Carlo noise on
        NGC 4047 rose from 33 to 86 in chi-square as the cloudlets doubled from 2^16 to 2^17).

        A cloudlet drawn in pixel ``i`` is placed so that, binned and convolved with the model's beam (centred as
        KinMS's, half a pixel on along an odd axis), it lands on pixel ``i``.
        """
        weights = np.nan_to_num(np.asarray(surface, dtype=float), nan=0.0).clip(0.0, None)
        if weights.shape != (obspars.ny, obspars.nx):
            raise ValueError(f"surface map {weights.shape} does not match the grid ({obspars.ny}, {obspars.nx})")
        total = float(weights.sum())
        if not total > 0:
            raise ValueError("the surface-brightness map holds no positive value to sample cloudlets from")
        cdf = np.cumsum(weights.ravel()) / total
        draws = qmc.Sobol(d=4, scramble=True, seed=np.random.default_rng(seed)).random(n_clouds)
        index = np.minimum(np.searchsorted(cdf, draws[:, 0], side="right"), cdf.size - 1)
        iy, ix = np.divmod(index, obspars.nx)
        cx, cy = obspars.centre_pixel
        x = (ix + draws[:, 1] - 0.5 - cx) * obspars.cellsize
        y = (iy + draws[:, 2] - 0.5 - cy) * obspars.cellsize
        return cls(x=x, y=y, gauss=ndtri(np.clip(draws[:, 3], 1e-12, 1.0 - 1e-12)))


@dataclass(frozen=True)
class _Pixels:
    """Nearest pixel of each cloudlet: the flat index ``iy * nx + ix`` and whether it lies inside the grid."""

    flat: np.ndarray
    inside: np.ndarray


class CubeModel:
    """A reusable KinMS-equivalent model for one cube grid.

    Everything that does not change between calls of a fit is made once here: the quasi-random draws (sorted by
    their radial coordinate), the cosine and sine of the azimuths, the Gaussian and exponential deviates, the PSF,
    its Fourier transform and the FFTW plans and buffers.

    Parameters
    ----------
    obspars
        Grid and beam of the cube.
    n_clouds
        Number of cloudlets (rounded up to a power of two, which keeps the Sobol sequence balanced).
    seed
        Seed of the scrambled Sobol sequence; the same seed gives bit-identical cubes.
    threads
        FFTW threads for the beam convolution.
    planner_effort
        FFTW planner flag; ``FFTW_MEASURE`` takes a fraction of a second once and speeds up every call.
    """

    def __init__(
        self,
        obspars: ObsPars,
        *,
        n_clouds: int = DEFAULT_CLOUDS,
        seed: int = 0,
        threads: int = 1,
        planner_effort: str = "FFTW_MEASURE",
    ) -> None:
        if not isinstance(obspars, ObsPars):
            raise TypeError(f"obspars must be an ObsPars, got {type(obspars).__name__}")
        if int(n_clouds) < 16:
            raise ValueError(f"n_clouds must be at least 16, got {n_clouds}")
        self.obspars = obspars
        self.seed = int(seed)
        self.n_clouds = 1 << int(math.ceil(math.log2(int(n_clouds))))
        draws = self._draws(self.n_clouds, self.seed)
        # Sorting by the radial coordinate makes cloudlet radii monotonic: interpolation then walks each profile
        # once, and the permutation leaves the joint distribution of the draws unchanged.
        draws = draws[np.argsort(draws[:, 0], kind="stable")]
        self._u_radius = np.ascontiguousarray(draws[:, 0])
        phase = 2.0 * np.pi * draws[:, 1]
        self._cos_phase = np.cos(phase)
        self._sin_phase = np.sin(phase)
        self._gauss = ndtri(draws[:, 2])
        folded = np.abs(2.0 * draws[:, 3] - 1.0)
        self._signed_exp = np.sign(draws[:, 3] - 0.5) * -np.log1p(-folded)
        self._signed_exp[self._signed_exp == 0] = 0.0

        self._check_beam(obspars)
        # KinMS centres its PSF at n / 2, half a pixel off the kernel's centre on an odd axis, which moves a
        # convolved cube by +0.5 pixel there; we do the same, so that both codes agree (ObsPars.centre_pixel).
        psf = gaussian_psf(obspars.beam, obspars.cellsize, shift=(0.5 * (obspars.nx % 2), 0.5 * (obspars.ny % 2)))
        self.psf_sum = float(psf.sum())
        self._sky_cache: tuple[SkyClouds, _Pixels] | None = None
        self._convolver = BeamConvolver(obspars.shape, psf, threads=threads, planner_effort=planner_effort)

    @staticmethod
    def _draws(n: int, seed: int) -> np.ndarray:
        draws = qmc.Sobol(d=4, scramble=True, seed=np.random.default_rng(seed)).random(n)
        # Keep draws strictly inside (0, 1) so that the Gaussian and exponential transforms stay finite.
        return np.clip(draws, 1e-12, 1.0 - 1e-12)

    @staticmethod
    def _check_beam(obspars: ObsPars) -> None:
        bmaj = obspars.beam[0]
        extent = min(obspars.nx, obspars.ny) * obspars.cellsize
        if bmaj >= extent:
            raise ValueError(
                f"beam: bmaj {bmaj:g} arcsec does not fit the cube ({obspars.nx}x{obspars.ny} pixels of "
                f"{obspars.cellsize:g} arcsec, {extent:g} arcsec on the short side); use a larger cube or check "
                "the beam units (arcsec)"
            )

    # ------------------------------------------------------------------------------------------------------
    def cloudlets(
        self,
        *,
        inc: ArrayLike,
        pa: ArrayLike,
        sb_rad: ArrayLike,
        sb_prof: ArrayLike,
        vel_rad: ArrayLike,
        vel_prof: ArrayLike,
        gas_sigma: ArrayLike = 0.0,
        disk_thick: ArrayLike = 0.0,
        radial_vel: ArrayLike = 0.0,
        bisymmetric: Bisymmetric | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sky positions (arcsec, relative to the phase centre, +x along increasing pixel index) and
        line-of-sight velocities (km/s, relative to the systemic velocity) of every cloudlet."""
        sb_rad = _radius_grid("sb_rad", sb_rad)
        sb_prof = np.atleast_1d(np.asarray(sb_prof, dtype=float))
        if sb_prof.shape != sb_rad.shape:
            raise ValueError(f"sb_prof has {sb_prof.size} values but sb_rad has {sb_rad.size}: give one per radius")
        if not np.all(np.isfinite(sb_prof)):
            raise ValueError("sb_prof must be finite (it holds NaN or inf)")
        if np.any(sb_prof < 0):
            raise ValueError("sb_prof must be non-negative (a surface brightness)")
        vel_rad = _radius_grid("vel_rad", vel_rad)
        vel_prof = np.atleast_1d(np.asarray(vel_prof, dtype=float))
        if vel_prof.shape != vel_rad.shape:
            raise ValueError(f"vel_prof has {vel_prof.size} values but vel_rad has {vel_rad.size}: give one per radius")
        if not np.all(np.isfinite(vel_prof)):
            raise ValueError("vel_prof must be finite (it holds NaN or inf)")
        inc = _profile("inc", inc, vel_rad, "vel_rad")
        pa = _profile("pa", pa, vel_rad, "vel_rad")
        gas_sigma = _profile("gas_sigma", gas_sigma, vel_rad, "vel_rad")
        disk_thick = _profile("disk_thick", disk_thick, sb_rad, "sb_rad")
        if np.any(gas_sigma < 0):
            raise ValueError("gas_sigma must be non-negative (km/s)")
        if np.any(disk_thick < 0):
            raise ValueError("disk_thick must be non-negative (arcsec)")

        cdf = cumulative_trapezoid(sb_prof * 2.0 * np.pi * sb_rad, sb_rad, initial=0.0)
        if not cdf[-1] > 0:
            raise ValueError("sb_prof integrates to zero: the surface-brightness profile holds no flux")
        cdf /= cdf[-1]
        radius = np.interp(self._u_radius, cdf, sb_rad)

        at_radius = _AtRadius(vel_rad, radius)
        x = radius * self._cos_phase
        y = radius * self._sin_phase
        if np.any(disk_thick > 0):
            on_sb_rad = at_radius if np.array_equal(sb_rad, vel_rad) else _AtRadius(sb_rad, radius)
            z = self._signed_exp * on_sb_rad(disk_thick)
        else:
            z = None

        sin_inc, cos_inc = at_radius.sin_cos(inc)
        los_vel = _line_of_sight(
            at_radius,
            self._cos_phase,
            self._sin_phase,
            sin_inc,
            self._gauss,
            vel_rad,
            at_radius(vel_prof),
            gas_sigma,
            _profile("radial_vel", radial_vel, vel_rad, "vel_rad"),
            bisymmetric,
        )

        # Inclination about the x axis, then rotation by (90 - PA) in the sky plane (KinMS's order and signs).
        y_inc = y * cos_inc
        if z is not None:
            y_inc += z * sin_inc
        cos_rot, sin_rot = at_radius.sin_cos(pa)  # cos(90 - PA), sin(90 - PA)
        x_sky = cos_rot * x + sin_rot * y_inc
        y_sky = cos_rot * y_inc - sin_rot * x
        return x_sky, y_sky, los_vel

    def clean_counts(
        self,
        x_sky: np.ndarray,
        y_sky: np.ndarray,
        los_vel: np.ndarray,
        *,
        phase_cent: tuple[float, float] = (0.0, 0.0),
        v_offset: float = 0.0,
        spread: float | None = None,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Cloudlet counts per voxel, ``(nv, ny, nx)``, binning to the nearest pixel and channel (each cloudlet
        counted ``weights`` times, once by default).

        With ``spread`` (km/s), each cloudlet is instead shared between its two nearest channels and the counts are
        convolved along the spectral axis with a Gaussian, together of dispersion ``spread`` (see
        :func:`analytic_spread`): the expected cube of cloudlets with Gaussian random velocities, without their
        Monte-Carlo noise."""
        phase_cent = np.asarray(phase_cent, dtype=float)
        if phase_cent.shape != (2,) or not np.all(np.isfinite(phase_cent)):
            raise ValueError(f"phase_cent must be two finite offsets (x, y) in arcsec, got {phase_cent!r}")
        if not np.isfinite(v_offset):
            raise ValueError(f"v_offset must be finite (km/s), got {v_offset!r}")
        return self._binned(self._pixels(x_sky, y_sky, phase_cent), los_vel, v_offset, spread, weights)

    def _pixels(self, x_sky: np.ndarray, y_sky: np.ndarray, phase_cent: tuple[float, float]) -> _Pixels:
        """The nearest pixel of every cloudlet."""
        op = self.obspars
        ix = np.rint(x_sky / op.cellsize + (op.nx / 2.0 + phase_cent[0] / op.cellsize))
        iy = np.rint(y_sky / op.cellsize + (op.ny / 2.0 + phase_cent[1] / op.cellsize))
        inside = (ix >= 0) & (ix < op.nx) & (iy >= 0) & (iy < op.ny)
        return _Pixels(flat=(iy * op.nx + ix).astype(np.intp), inside=inside)

    def _binned(
        self,
        pixels: _Pixels,
        los_vel: np.ndarray,
        v_offset: float,
        spread: float | None,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Counts per voxel of cloudlets in ``pixels`` at ``los_vel``, each ``weights`` (see :meth:`clean_counts`)."""
        if spread is not None:
            return self._spread_counts(pixels, los_vel, v_offset, spread, weights)
        op = self.obspars
        iv = np.rint(los_vel / op.dv + (op.nv / 2.0 + v_offset / op.dv))
        inside = pixels.inside & (iv >= 0) & (iv < op.nv)
        flat = iv[inside].astype(np.intp) * (op.ny * op.nx) + pixels.flat[inside]
        size = op.nv * op.ny * op.nx
        if weights is None:
            counts = np.bincount(flat, minlength=size).astype(float)
        else:
            counts = np.bincount(flat, weights=weights[inside], minlength=size)
        return counts.reshape(op.shape)

    def _spread_counts(
        self, pixels: _Pixels, los_vel: np.ndarray, v_offset: float, spread: float, weights: np.ndarray | None
    ) -> np.ndarray:
        op = self.obspars
        # The linear share between two channels has a variance of dv^2 / 6 against the nearest channel's dv^2 / 12,
        # which is the one KinMS's (and the expected cube's) binning adds: the Gaussian makes up the rest.
        sigma = math.sqrt(max(spread**2 - op.dv**2 / 12.0, 0.0)) / op.dv
        pad = int(math.ceil(4.0 * sigma)) + 2  # cloudlets just outside the band spread into it
        fv = los_vel / op.dv + (op.nv / 2.0 + v_offset / op.dv + pad)
        lower = np.floor(fv)
        upper_share = fv - lower
        length = op.nv + 2 * pad
        inside = pixels.inside & (lower >= 0) & (lower < length - 1)
        out = np.zeros(op.shape)
        if not inside.any():
            return out
        pixel, lower, share = pixels.flat[inside], lower[inside], upper_share[inside]
        lower_share = 1.0 - share
        if weights is not None:
            lower_share *= weights[inside]
            share *= weights[inside]
        # Only the spectra of sky pixels that hold cloudlets are smoothed: an inclined disc covers a fraction of
        # its bounding box (a quarter for an edge-on disc at PA 40).
        occupied = np.flatnonzero(np.bincount(pixel, minlength=op.ny * op.nx))
        spectrum_of = np.empty(op.ny * op.nx, dtype=np.intp)
        spectrum_of[occupied] = np.arange(occupied.size)
        n_spectra = occupied.size
        # Gaussian along the spectral axis through the FFT, long enough that nothing wraps into the band; the
        # counts are binned at that length so that the transform need not pad them.
        n_fft = fft.next_fast_len(length + 2 * pad)
        flat = lower.astype(np.intp) * n_spectra + spectrum_of[pixel]
        size = n_fft * n_spectra
        counts = np.bincount(flat, weights=lower_share, minlength=size)
        counts += np.bincount(flat + n_spectra, weights=share, minlength=size)
        kernel = np.exp(-2.0 * (np.pi * sigma * np.fft.rfftfreq(n_fft)) ** 2)
        spectrum = fft.rfft(counts.reshape(n_fft, n_spectra), axis=0, overwrite_x=True)
        spectrum *= kernel[:, None]
        smoothed = fft.irfft(spectrum, n=n_fft, axis=0, overwrite_x=True)
        out.reshape(op.nv, op.ny * op.nx)[:, occupied] = smoothed[pad : pad + op.nv]
        return out

    def cube(
        self,
        *,
        inc: ArrayLike,
        pa: ArrayLike,
        sb_rad: ArrayLike,
        sb_prof: ArrayLike,
        vel_rad: ArrayLike,
        vel_prof: ArrayLike,
        int_flux: float,
        gas_sigma: ArrayLike = 0.0,
        disk_thick: ArrayLike = 0.0,
        phase_cent: tuple[float, float] = (0.0, 0.0),
        v_offset: float = 0.0,
        clean: bool = False,
        radial_vel: ArrayLike = 0.0,
        bisymmetric: Bisymmetric | None = None,
        m1: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """The model cube ``(nv, ny, nx)``, float64, in Jy/beam (``clean=True``: no beam, Jy/pixel).

        Parameters
        ----------
        inc, pa
            Inclination and position angle in degrees (PA of the receding side, north through east); scalars or
            profiles along ``vel_rad`` (warps).
        sb_rad, sb_prof
            Radius grid (arcsec) and surface-brightness profile (arbitrary scale) of the gas.
        vel_rad, vel_prof
            Radius grid (arcsec) and circular velocity (km/s).
        int_flux
            Integrated flux in Jy km/s.
        gas_sigma
            Gas velocity dispersion in km/s: scalar or profile along ``vel_rad``.
        disk_thick
            Exponential scale height in arcsec: scalar or profile along ``sb_rad``.
        phase_cent
            Offset (arcsec) of the disc centre from the cube centre along +x (pixel index) and +y.
        v_offset
            Velocity offset (km/s) of the disc from the cube's central channel coordinate ``nv / 2``.
        clean
            Skip the beam convolution.
        radial_vel
            Radial velocity in the disc plane (km/s; scalar or profile along ``vel_rad``), KinMS's ``pure_radial``
            convention (see :func:`_line_of_sight`).
        bisymmetric
            A bisymmetric flow (:class:`Bisymmetric`), or None.
        m1
            A lopsided disc: the amplitudes ``(a_c, a_s)`` of the surface brightness's m = 1 mode,
            ``Sigma(r) (1 + a_c cos(theta) + a_s sin(theta))`` at azimuth ``theta`` in the disc (KinMS's: 0 on the
            approaching half of the major axis, where the line of sight gets ``-v_circ sin(inc)``), held at zero
            where it would be negative; or None.
        """
        if not (np.isfinite(int_flux) and int_flux > 0):
            raise ValueError(f"int_flux must be a positive finite flux (Jy km/s), got {int_flux!r}")
        spread = analytic_spread(gas_sigma, self.obspars.dv)
        x_sky, y_sky, los_vel = self.cloudlets(
            inc=inc,
            pa=pa,
            sb_rad=sb_rad,
            sb_prof=sb_prof,
            vel_rad=vel_rad,
            vel_prof=vel_prof,
            gas_sigma=0.0 if spread else gas_sigma,
            disk_thick=disk_thick,
            radial_vel=radial_vel,
            bisymmetric=bisymmetric,
        )
        weights = None if m1 is None else self.m1_weights(*m1)
        counts = self.clean_counts(
            x_sky, y_sky, los_vel, phase_cent=phase_cent, v_offset=v_offset, spread=spread, weights=weights
        )
        return self._finish(counts, int_flux, clean)

    def m1_weights(self, a_cos: float, a_sin: float) -> np.ndarray:
        """Each cloudlet's flux in a disc whose surface brightness has an m = 1 mode of amplitudes ``a_cos`` and
        ``a_sin`` (see :meth:`cube`): weighting equal cloudlets by azimuth keeps their radii, and so every radial
        profile, as they are."""
        if not (np.isfinite(a_cos) and np.isfinite(a_sin)):
            raise ValueError(f"the m = 1 amplitudes must be finite, got {(a_cos, a_sin)!r}")
        weights = 1.0 + a_cos * self._cos_phase + a_sin * self._sin_phase
        return np.clip(weights, 0.0, None, out=weights)

    def sky_cube(
        self,
        clouds: SkyClouds,
        *,
        inc: float,
        pa: float,
        vel_rad: ArrayLike,
        vel_prof: ArrayLike,
        int_flux: float,
        gas_sigma: ArrayLike = 0.0,
        phase_cent: tuple[float, float] = (0.0, 0.0),
        v_offset: float = 0.0,
        clean: bool = False,
        radial_vel: ArrayLike = 0.0,
        bisymmetric: Bisymmetric | None = None,
    ) -> np.ndarray:
        """The model cube of cloudlets fixed on the sky (:class:`SkyClouds`, e.g. sampled from the observed
        emission): each is deprojected with ``inc`` and ``pa`` about the kinematic centre ``phase_cent`` to its
        radius and azimuth in the disc, which give its line-of-sight velocity; it stays where it is on the sky.
        Keywords as :meth:`cube` (``inc`` and ``pa`` scalars: a warped disc cannot be deprojected uniquely)."""
        if not (np.isfinite(int_flux) and int_flux > 0):
            raise ValueError(f"int_flux must be a positive finite flux (Jy km/s), got {int_flux!r}")
        if clouds.x.size > self.n_clouds:
            raise ValueError(
                f"{clouds.x.size} sky cloudlets need a model of at least as many (n_clouds {self.n_clouds})"
            )
        vel_rad = _radius_grid("vel_rad", vel_rad)
        vel_prof = np.atleast_1d(np.asarray(vel_prof, dtype=float))
        gas_sigma = _profile("gas_sigma", gas_sigma, vel_rad, "vel_rad")
        spread = analytic_spread(gas_sigma, self.obspars.dv)
        if spread:
            gas_sigma = np.zeros(1)
        # Inverse of the projection in :meth:`cloudlets` about the kinematic centre.
        dx, dy = clouds.x - phase_cent[0], clouds.y - phase_cent[1]
        pa_rad, inc_rad = math.radians(pa), math.radians(inc)
        cos_rot, sin_rot = math.sin(pa_rad), math.cos(pa_rad)
        x = cos_rot * dx - sin_rot * dy
        y = (sin_rot * dx + cos_rot * dy) / max(math.cos(inc_rad), _MIN_COS_INC)
        radius = np.hypot(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos_phase, sin_phase = x / radius, y / radius
        centre = radius == 0
        if centre.any():  # a cloudlet on the kinematic centre moves along the major axis
            cos_phase[centre], sin_phase[centre] = 1.0, 0.0
        at_radius = _AtRadius(vel_rad, radius)
        los_vel = _line_of_sight(
            at_radius,
            cos_phase,
            sin_phase,
            math.sin(inc_rad),
            clouds.gauss,
            vel_rad,
            at_radius(vel_prof),
            gas_sigma,
            _profile("radial_vel", radial_vel, vel_rad, "vel_rad"),
            bisymmetric,
        )
        if not np.isfinite(v_offset):
            raise ValueError(f"v_offset must be finite (km/s), got {v_offset!r}")
        counts = self._binned(self._sky_pixels(clouds), los_vel, v_offset, spread)
        return self._finish(counts, int_flux, clean)

    def _sky_pixels(self, clouds: SkyClouds) -> _Pixels:
        """The pixels of sky-fixed cloudlets, found once: they do not move between the calls of a fit."""
        if self._sky_cache is None or self._sky_cache[0] is not clouds:
            self._sky_cache = (clouds, self._pixels(clouds.x, clouds.y, (0.0, 0.0)))
        return self._sky_cache[1]

    def _finish(self, counts: np.ndarray, int_flux: float, clean: bool) -> np.ndarray:
        """Cloudlet counts -> the beam-convolved cube scaled to ``int_flux`` (in place)."""
        total = counts.sum()
        if total == 0:
            raise ModelOutsideCubeError(
                "the model's emission falls entirely outside the cube: check phase_cent, v_offset, the radius "
                "grids and the cube size"
            )
        dv = self.obspars.dv
        if clean:
            counts *= int_flux / (total * dv)
            return counts
        cube = self._convolver(counts, out=counts)
        cube *= int_flux * self.psf_sum / (cube.sum() * dv)
        return cube


def model_cube(
    obspars: ObsPars,
    *,
    n_clouds: int = DEFAULT_CLOUDS,
    seed: int = 0,
    threads: int = 1,
    **params: object,
) -> np.ndarray:
    """One-shot model cube: ``CubeModel(obspars, ...).cube(**params)``.

    Keywords are those of :meth:`CubeModel.cube` (``inc, pa, sb_rad, sb_prof, vel_rad, vel_prof, int_flux,
    gas_sigma, disk_thick, phase_cent, v_offset, clean``) and of :class:`CubeModel` (``n_clouds, seed, threads``).
    """
    model = CubeModel(
        obspars,
        n_clouds=n_clouds,
        seed=seed,
        threads=threads,
        planner_effort="FFTW_ESTIMATE",
    )
    return model.cube(**params)
