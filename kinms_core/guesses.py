"""First guesses of the model parameters, and data-derived bounds, from a masked cube.

Every guess comes from the masked data alone (no fitting):

- ``flux``: the masked data summed, times the channel width, over the beam area in pixels (Jy km/s).
- ``vsys``: the mean of the midpoints of the masked spectrum's W20 and W50 edges (interpolated between channels).
- ``xc, yc``: the moment-0 centroid, in arcsec from the cube's reference pixel along +x and +y.
- ``pa``: the direction from the approaching to the receding side, each side's position being the centroid of the
  masked data weighted by ``|v - vsys|`` on its side of ``vsys`` (KinMS convention: north through east of the
  receding side).
- ``inc``: ``arccos(b / a)`` from the covariance of an elliptical Gaussian fitted to the moment-0 map (second
  moments if the fit fails) after subtracting the beam's (and the pixel's), clipped to [10, 85] degrees.
- ``vflat``: the W20 width corrected for the broadening of its edges by the gas dispersion and the channel width
  and for the gas rotating a little below vflat (calibrated on model discs), over ``2 sin(inc)``.
- ``scalerad``: the half-light radius (in elliptical apertures, beam-corrected) over 1.678, the exponential disc's
  ratio.
- ``rturn``: half the beam's major axis; ``sigma``: 10 km/s or half a channel, whichever is larger.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.optimize import least_squares

from .beam import beam_axes
from .constants import FWHM_TO_SIGMA
from .errors import NoEmissionError
from .ingest import Cube
from .parametric import HALF_LIGHT_PER_SCALE

__all__ = ["GUESS_KEYS", "data_bounds", "first_guesses"]

log = logging.getLogger(__name__)

#: Keys of :func:`first_guesses` (and of :func:`data_bounds`).
GUESS_KEYS = ("flux", "xc", "yc", "vsys", "pa", "inc", "vflat", "scalerad", "rturn", "sigma")

# Default gas dispersion guess (km/s).
_SIGMA_GUESS = 10.0
# W20 of model discs (exponential, arctan rotation curve, rturn <~ scalerad, channel width dv, dispersion s) is
# about _W20_FRACTION * 2 vflat sin(i) + 2 * _EDGE_BROADENING * sqrt(s^2 + dv^2 / 12): the bulk of the gas rotates a
# little below vflat, and the dispersion and the channels widen the edges (least squares over 60 noiseless models
# with inc 30-85, vflat 100-250, dv 10 and 20 km/s, sigma 5-15 km/s; residual scatter 4.5%).
_W20_FRACTION = 0.92
_EDGE_BROADENING = 1.3


def _masked(cube: Cube, mask: np.ndarray) -> np.ndarray:
    data = np.asarray(cube.data, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != data.shape:
        raise ValueError(f"{cube.name}: mask shape {mask.shape} does not match the cube's {data.shape}")
    out = np.where(mask & np.isfinite(data), data, 0.0)
    if not np.any(out > 0):
        raise NoEmissionError(f"{cube.name}: the mask holds no positive emission, so no guesses can be made")
    return out


def _edges(spec: np.ndarray, velocities: np.ndarray, fraction: float) -> tuple[float, float]:
    """Velocities where the spectrum first rises above ``fraction`` of its peak, from each end (interpolated)."""
    level = fraction * float(spec.max())
    above = np.flatnonzero(spec >= level)
    lo, hi = int(above[0]), int(above[-1])

    def cross(i_out: int, i_in: int) -> float:
        if i_out < 0 or i_out >= spec.size:
            return float(velocities[i_in])
        s_out, s_in = spec[i_out], spec[i_in]
        t = (level - s_out) / (s_in - s_out) if s_in != s_out else 1.0
        return float(velocities[i_out] + t * (velocities[i_in] - velocities[i_out]))

    return cross(lo - 1, lo), cross(hi + 1, hi)


def _beam_covariance(beam: tuple[float, float, float], cellsize: float) -> np.ndarray:
    """Covariance (pixels^2) of the Gaussian beam in pixel coordinates (+x west, +y north)."""
    bmaj, bmin, bpa = beam
    s_maj = bmaj * FWHM_TO_SIGMA / cellsize
    s_min = bmin * FWHM_TO_SIGMA / cellsize
    u, v = (np.array(axis) for axis in beam_axes(bpa))
    return s_maj**2 * np.outer(u, u) + s_min**2 * np.outer(v, v)


def _gaussian_fit_covariance(mom0: np.ndarray, region: np.ndarray, centre: tuple[float, float]) -> np.ndarray | None:
    """Covariance (pixels^2) of an elliptical Gaussian least-squares fitted to the moment-0 map over ``region``.

    Unlike second moments, which weight every pixel by its squared distance and so by the noise of the outskirts,
    a fit weights every pixel's residual alike; for a disc whose isophotes are ellipses the fit keeps their axis
    ratio. Returns None when the fit fails.
    """
    yy, xx = np.nonzero(region)
    values = mom0[yy, xx]
    if values.size < 8 or not np.any(values > 0):
        return None
    x, y = xx.astype(float), yy.astype(float)
    total = float(values.sum())
    if total <= 0:
        return None
    var0 = max(float((values * ((x - centre[0]) ** 2 + (y - centre[1]) ** 2)).sum() / total) / 2.0, 1.0)

    def residuals(p: np.ndarray) -> np.ndarray:
        amp, x0, y0, l11, l21, l22 = p
        # Precision matrix as L L^T (L lower triangular with positive diagonal): always positive definite.
        a, c = math.exp(l11), math.exp(l22)
        p11, p12, p22 = a * a, a * l21, l21 * l21 + c * c
        ddx, ddy = x - x0, y - y0
        return amp * np.exp(-0.5 * (p11 * ddx * ddx + 2.0 * p12 * ddx * ddy + p22 * ddy * ddy)) - values

    start = np.array([float(values.max()), centre[0], centre[1], -0.5 * math.log(var0), 0.0, -0.5 * math.log(var0)])
    try:
        result = least_squares(residuals, start, method="trf", x_scale="jac", max_nfev=400)
    except (ValueError, FloatingPointError):
        return None
    if not result.success or not np.all(np.isfinite(result.x)) or result.x[0] <= 0:
        return None
    _, _, _, l11, l21, l22 = result.x
    lower = np.array([[math.exp(l11), 0.0], [l21, math.exp(l22)]])
    try:
        cov = np.linalg.inv(lower @ lower.T)
    except np.linalg.LinAlgError:
        return None
    return cov if np.all(np.isfinite(cov)) else None


def _kinematic_pa(masked: np.ndarray, velocities: np.ndarray, vsys: float) -> float:
    """PA (degrees, north through east of the receding side) from |v - vsys|-weighted side centroids."""
    offsets = velocities - vsys
    w_rec = np.tensordot(np.clip(offsets, 0, None), masked, axes=(0, 0))
    w_app = np.tensordot(np.clip(-offsets, 0, None), masked, axes=(0, 0))
    w_rec = np.clip(w_rec, 0, None)
    w_app = np.clip(w_app, 0, None)
    ny, nx = w_rec.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    if w_rec.sum() <= 0 or w_app.sum() <= 0:
        return float("nan")
    xr, yr = (w_rec * xx).sum() / w_rec.sum(), (w_rec * yy).sum() / w_rec.sum()
    xa, ya = (w_app * xx).sum() / w_app.sum(), (w_app * yy).sum() / w_app.sum()
    dx, dy = xr - xa, yr - ya
    if dx == 0 and dy == 0:
        return float("nan")
    # The receding direction (dx, dy) = (-sin PA, cos PA).
    return float(np.degrees(np.arctan2(-dx, dy)) % 360.0)


def first_guesses(cube: Cube, mask: np.ndarray, rms: float) -> dict[str, float]:
    """First guesses of the disc parameters from the masked cube.

    Parameters
    ----------
    cube
        The cube (usually trimmed).
    mask
        bool ``(nv, ny, nx)`` signal mask on the cube's grid.
    rms
        Noise of the cube (Jy/beam); used to judge whether a measurement is meaningful.

    Returns
    -------
    dict
        ``flux`` (Jy km/s), ``xc``, ``yc`` (arcsec from the reference pixel along +x and +y), ``vsys`` (radio
        km/s), ``pa``, ``inc`` (degrees, KinMS conventions), ``vflat`` (km/s), ``scalerad``, ``rturn`` (arcsec),
        ``sigma`` (km/s); plain floats.
    """
    op = cube.obspars
    masked = _masked(cube, mask)
    cell = op.cellsize
    spec = masked.sum(axis=(1, 2))
    flux = float(spec.sum() * op.dv / op.beam_area_pixels)
    vsys, w20 = _systemic_velocity_and_width(spec, op.velocities, op.dv)

    mom0 = np.clip(masked.sum(axis=0) * op.dv, 0.0, None)
    total = float(mom0.sum())
    ny, nx = mom0.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    centre = (float((mom0 * xx).sum() / total), float((mom0 * yy).sum() / total))
    x_ref, y_ref = op.reference_pixel
    xc, yc = (centre[0] - x_ref) * cell, (centre[1] - y_ref) * cell
    cov = _map_covariance(mom0, np.any(mask, axis=0), centre)
    beam_cov = _beam_covariance(op.beam, cell)
    inc, major = _inclination_and_major_axis(cov, beam_cov)

    pa = _kinematic_pa(masked, op.velocities, vsys)
    if not np.isfinite(pa):
        pa = float(np.degrees(np.arctan2(-major[0], major[1])) % 360.0)
        log.warning("%s: no velocity gradient found; PA guess from the moment-0 shape only (%.0f deg)", cube.name, pa)
    scalerad = _half_light_radius(mom0, cov, beam_cov, centre) * cell / HALF_LIGHT_PER_SCALE

    sigma = max(_SIGMA_GUESS, 0.5 * op.dv)
    broadening = math.sqrt(sigma**2 + op.dv**2 / 12.0)
    width = max(w20 - 2.0 * _EDGE_BROADENING * broadening, 0.5 * w20) / _W20_FRACTION
    vflat = float(width / (2.0 * math.sin(math.radians(inc))))

    guesses = {
        "flux": flux,
        "xc": float(xc),
        "yc": float(yc),
        "vsys": float(vsys),
        "pa": float(pa),
        "inc": inc,
        "vflat": vflat,
        "scalerad": float(max(scalerad, 0.1 * cell)),
        "rturn": float(0.5 * op.beam[0]),
        "sigma": float(sigma),
    }
    peak = float(np.nanmax(cube.data[mask])) if np.any(mask) else float("nan")
    log.info(
        "%s: guesses %s (W20 %.1f km/s, peak S/N %.1f)",
        cube.name,
        ", ".join(f"{k}={v:.4g}" for k, v in guesses.items()),
        w20,
        peak / rms if rms > 0 else float("nan"),
    )
    return guesses


def _systemic_velocity_and_width(spec: np.ndarray, velocities: np.ndarray, dv: float) -> tuple[float, float]:
    """The systemic velocity (mean of the W20 and W50 midpoints) and W20 (at least a channel) of a spectrum."""
    v_lo, v_hi = _edges(spec, velocities, 0.2)
    v_lo50, v_hi50 = _edges(spec, velocities, 0.5)
    # The W20 and W50 midpoints err independently on noisy edges: their mean is steadier than either.
    return 0.25 * (v_lo + v_hi + v_lo50 + v_hi50), max(v_hi - v_lo, dv)


def _map_covariance(mom0: np.ndarray, footprint: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """The moment-0 map's covariance (pixels^2): of a 2-D Gaussian fitted to it, else its second moments."""
    cov = _gaussian_fit_covariance(mom0, footprint, centre)
    if cov is not None:
        return cov
    ny, nx = mom0.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    dx, dy = xx - centre[0], yy - centre[1]
    moments = [[(mom0 * dx * dx).sum(), (mom0 * dx * dy).sum()], [(mom0 * dx * dy).sum(), (mom0 * dy * dy).sum()]]
    return np.array(moments) / float(mom0.sum())


def _inclination_and_major_axis(cov: np.ndarray, beam_cov: np.ndarray) -> tuple[float, np.ndarray]:
    """Inclination (deg, 10-85) from the axis ratio of the beam-deconvolved map, and its major axis (x, y)."""
    intrinsic = cov - beam_cov - np.eye(2) / 12.0
    evals, evecs = np.linalg.eigh(intrinsic)
    major_var = max(float(evals[1]), 0.25)
    minor_var = max(float(evals[0]), 0.0)
    ratio = math.sqrt(minor_var / major_var)
    return float(np.clip(np.degrees(np.arccos(min(ratio, 1.0))), 10.0, 85.0)), evecs[:, 1]


def _half_light_radius(mom0: np.ndarray, cov: np.ndarray, beam_cov: np.ndarray, centre: tuple[float, float]) -> float:
    """Half-light radius (pixels) in elliptical apertures of the observed shape, the beam removed in quadrature."""
    ny, nx = mom0.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    dx, dy = xx - centre[0], yy - centre[1]
    obs_evals, obs_evecs = np.linalg.eigh(cov)
    q_obs = math.sqrt(max(obs_evals[0], 1e-12) / max(obs_evals[1], 1e-12))
    a_axis, b_axis = obs_evecs[:, 1], obs_evecs[:, 0]
    along = dx * a_axis[0] + dy * a_axis[1]
    across = dx * b_axis[0] + dy * b_axis[1]
    radius = np.hypot(along, across / q_obs).ravel()
    order = np.argsort(radius)
    growth = np.cumsum(mom0.ravel()[order])
    r_half_obs = float(radius[order][np.searchsorted(growth, 0.5 * growth[-1])])
    beam_var_major = float(a_axis @ beam_cov @ a_axis)
    return math.sqrt(max(r_half_obs**2 - 2.0 * math.log(2.0) * beam_var_major, 0.25))


def data_bounds(cube: Cube, guesses: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Data-derived ('auto') bounds of each parameter for the fit.

    Parameters
    ----------
    cube
        The cube the guesses were made on.
    guesses
        Output of :func:`first_guesses`.

    Returns
    -------
    dict
        ``name -> (min, max)``, plain floats: ``xc, yc`` within a quarter of the cube's size of the guess (and
        within the cube), ``vsys`` within the cube's velocity range, ``flux`` 0.1 to 10 times the guess,
        ``scalerad`` 0.1 pixel to half the cube, ``vflat`` 10 to 1000 km/s (more for very wide lines), ``rturn``
        0.01 arcsec to half the cube, ``sigma`` 0 to min(100, velocity range / 4), ``pa`` a 360-degree window
        centred on the guess, ``inc`` 5 to 89.
    """
    missing = [k for k in GUESS_KEYS if k not in guesses]
    if missing:
        raise ValueError(f"guesses lack {missing}: pass the output of first_guesses")
    op = cube.obspars
    cell = op.cellsize
    x_ref, y_ref = op.reference_pixel
    x_min, x_max = (0.0 - x_ref) * cell, (op.nx - 1 - x_ref) * cell
    y_min, y_max = (0.0 - y_ref) * cell, (op.ny - 1 - y_ref) * cell
    quarter_x, quarter_y = 0.25 * op.nx * cell, 0.25 * op.ny * cell
    velocities = op.velocities
    v_min, v_max = float(velocities.min()), float(velocities.max())
    vrange = v_max - v_min + op.dv
    half_cube = 0.5 * max(op.nx, op.ny) * cell

    def within(value: float, half: float, lo: float, hi: float) -> tuple[float, float]:
        return (float(max(lo, value - half)), float(min(hi, value + half)))

    flux = float(guesses["flux"])
    pa = float(guesses["pa"])
    vflat = float(guesses["vflat"])
    return {
        "flux": (0.1 * flux, 10.0 * flux),
        "xc": within(float(guesses["xc"]), quarter_x, x_min, x_max),
        "yc": within(float(guesses["yc"]), quarter_y, y_min, y_max),
        "vsys": (v_min, v_max),
        "pa": (pa - 180.0, pa + 180.0),
        "inc": (5.0, 89.0),
        "vflat": (10.0, float(max(1000.0, 2.0 * vflat))),
        "scalerad": (0.1 * cell, half_cube),
        "rturn": (0.01, half_cube),
        "sigma": (0.0, float(min(100.0, vrange / 4.0))),
    }
