"""Diagnostic figures of one galaxy's fit: moment maps, spectrum, position-velocity diagram, posterior and traces.

Every figure is made with the object API (:class:`matplotlib.figure.Figure`), never pyplot, so that plotting works
headless and in parallel processes without touching global state.

Sky panels show offsets in arcsec from the cube's reference pixel, east to the left: ``dRA = -(x - x_ref) *
cellsize`` increases to the left and ``dDec = (y - y_ref) * cellsize`` upwards. The beam is drawn as an ellipse in
the lower-left corner of every map; its position angle runs from north through east (counter-clockwise on the
sky as displayed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from scipy.ndimage import gaussian_filter, label, maximum

from .constants import FWHM_TO_SIGMA
from .moments import major_axis_direction, moment0, moment1, pv_diagram, spectrum
from .obspars import ObsPars

__all__ = [
    "DPI",
    "DiagnosticMaps",
    "beam_ellipse",
    "diagnostic_maps",
    "plot_diagnostics",
    "save_figure",
    "display_mask",
]

log = logging.getLogger(__name__)

DPI = 110
#: Size (inches) of the diagnostic figure with a model (2 x 3 panels) and without one (2 x 2 panels).
DIAGNOSTICS_FIGSIZE = (16.0, 9.5)
DIAGNOSTICS_FIGSIZE_NO_MODEL = (11.5, 9.5)

# Fractions of the data's peak at which model contours are drawn (on moment 0 and the pv diagram).
CONTOUR_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
# A masked region is kept only if its smoothed peak exceeds this many sigma (see display_mask).
SEED_NSIGMA = 5.0
MAP_CMAP = "YlOrBr"
VELOCITY_CMAP = "RdYlBu_r"
RESIDUAL_CMAP = "RdBu_r"
KMS = r"km s$^{-1}$"


# ----------------------------------------------------------------------------------------------- helpers
def beam_ellipse(
    beam: Sequence[float],
    xy: tuple[float, float] = (0.0, 0.0),
    *,
    cellsize: float | None = None,
    **kwargs: object,
) -> Ellipse:
    """A matplotlib ellipse of the beam, oriented on the sky.

    Parameters
    ----------
    beam
        ``(bmaj, bmin, bpa)``: FWHM axes in arcsec and position angle in degrees from north through east.
    xy
        Centre of the ellipse in the axes' data coordinates.
    cellsize
        ``None`` (default): the axes show sky offsets in arcsec, ``(dRA, dDec)``, with dRA positive to the east
        (and drawn increasing to the left); the major axis then points along ``(sin bpa, cos bpa)`` and the
        ellipse angle is ``90 - bpa``. A pixel size in arcsec: the axes show pixel coordinates ``(x, y)`` with x
        increasing to the west; sizes are divided by ``cellsize`` and the angle is ``90 + bpa`` (major axis
        along ``(-sin bpa, cos bpa)``). Either way the beam points north-east (upper left, as displayed) for
        ``bpa = 45``.
    **kwargs
        Passed to :class:`matplotlib.patches.Ellipse` (defaults: grey fill, black edge).

    Returns
    -------
    Ellipse
        ``width`` is the major axis, ``height`` the minor axis, ``angle`` in degrees counter-clockwise from the
        data +x axis.
    """
    bmaj, bmin, bpa = (float(b) for b in beam)
    if cellsize is None:
        angle = 90.0 - bpa
    else:
        bmaj, bmin = bmaj / cellsize, bmin / cellsize
        angle = 90.0 + bpa
    style: dict[str, object] = {"facecolor": "0.6", "edgecolor": "black", "linewidth": 1.0, "alpha": 0.9}
    style.update(kwargs)
    return Ellipse(xy, width=bmaj, height=bmin, angle=angle, **style)


def _negative_rms(values: np.ndarray) -> tuple[float, int]:
    """RMS of the finite negative values (noise only, for emission that is positive) and their number."""
    neg = values[np.isfinite(values) & (values < 0)]
    if neg.size == 0:
        return 0.0, 0
    return float(np.sqrt(np.mean(neg**2))), int(neg.size)


def _smooth(cube: np.ndarray, beam: Sequence[float], cellsize: float) -> np.ndarray:
    """Cube smoothed by a circular Gaussian of the beam's major axis and by one channel (NaNs as zero)."""
    sigma_pix = float(beam[0]) / cellsize * FWHM_TO_SIGMA
    values = np.where(np.isfinite(cube), cube, 0.0)
    return gaussian_filter(values, sigma=(1.0, sigma_pix, sigma_pix), mode="constant", cval=0.0)


def display_mask(
    data: np.ndarray,
    obspars: ObsPars,
    rms: float | None = None,
    *,
    nsigma: float = 3.0,
) -> tuple[np.ndarray, float]:
    """Smooth-and-clip mask of the emission for the figures' moment maps when no prepared mask is given (the usual
    radio practice; the fit's own mask is :func:`kinms_core.noise.signal_mask`).

    The cube is smoothed by a Gaussian of the beam's FWHM in the sky and of one channel in velocity; voxels of the
    smoothed cube above ``nsigma`` times its noise are kept, in connected regions whose smoothed peak reaches 5 sigma
    (isolated noise peaks are dropped). The smoothed cube's noise is ``rms`` scaled by the
    ratio of the RMS of the negative values after and before smoothing (negative values are noise). The
    threshold never falls below 1e-3 of the smoothed peak, so noise-free model cubes keep only their emission.

    Parameters
    ----------
    data
        Cube ``(nv, ny, nx)``; NaNs are never in the mask.
    obspars
        Grid and beam of the cube.
    rms
        Noise per voxel; ``None`` estimates it as the RMS of the negative values.
    nsigma
        Clipping level in units of the smoothed cube's noise.

    Returns
    -------
    mask, rms
        Boolean mask ``(nv, ny, nx)`` and the per-voxel noise used (given or estimated).
    """
    threshold, seed, rms = _mask_thresholds(data, obspars, rms, nsigma)
    return _apply_thresholds(data, obspars, threshold, seed), rms


def _mask_thresholds(
    data: np.ndarray, obspars: ObsPars, rms: float | None, nsigma: float
) -> tuple[float, float, float]:
    """Clip and seed levels of the smoothed cube, and the per-voxel rms (given or estimated)."""
    rms_raw, n_raw = _negative_rms(data)
    if rms is None or not np.isfinite(rms) or rms <= 0:
        rms = rms_raw
    smoothed = _smooth(data, obspars.beam, obspars.cellsize)
    rms_smooth, n_smooth = _negative_rms(smoothed)
    ratio = rms_smooth / rms_raw if (n_raw > 100 and n_smooth > 100 and rms_raw > 0) else 1.0
    ratio = min(max(ratio, 0.0), 1.0) or 1.0
    peak = float(np.max(smoothed)) if smoothed.size else 0.0
    threshold = max(nsigma * rms * ratio, 1e-3 * peak)
    seed = max(SEED_NSIGMA * rms * ratio, threshold)
    return threshold, seed, float(rms)


def _apply_thresholds(cube: np.ndarray, obspars: ObsPars, threshold: float, seed: float) -> np.ndarray:
    """Voxels of the smoothed cube above ``threshold`` in connected regions whose peak exceeds ``seed``."""
    smoothed = _smooth(cube, obspars.beam, obspars.cellsize)
    mask = smoothed > threshold
    # Keep only connected regions that reach a secure detection: isolated noise peaks just above the clip go.
    labels, count = label(mask)
    if count > 1:
        peaks = maximum(smoothed, labels, index=np.arange(1, count + 1))
        keep = np.concatenate([[False], np.asarray(peaks) > seed])
        mask = keep[labels]
    mask &= np.isfinite(cube)
    if threshold <= 0:
        mask &= cube > 0
    return mask


def _sky(obspars: ObsPars) -> tuple[tuple[float, float, float, float], np.ndarray, np.ndarray]:
    """Imshow extent (left, right, bottom, top) in arcsec and the dRA (per x) and dDec (per y) pixel offsets."""
    x_ref, y_ref = obspars.reference_pixel
    cs = obspars.cellsize
    dra = -(np.arange(obspars.nx) - x_ref) * cs
    ddec = (np.arange(obspars.ny) - y_ref) * cs
    extent = (dra[0] + 0.5 * cs, dra[-1] - 0.5 * cs, ddec[0] - 0.5 * cs, ddec[-1] + 0.5 * cs)
    return extent, dra, ddec


def _pixel_to_sky(obspars: ObsPars, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    x_ref, y_ref = obspars.reference_pixel
    return -(np.asarray(x) - x_ref) * obspars.cellsize, (np.asarray(y) - y_ref) * obspars.cellsize


def _is_jy_per_beam(bunit: str) -> bool:
    unit = bunit.lower().replace(" ", "")
    return "jy" in unit and ("beam" in unit or "/bm" in unit)


def _units(obspars: ObsPars) -> tuple[str, str, str]:
    """Labels of the cube's brightness, moment-0 and spectrum units."""
    if _is_jy_per_beam(obspars.bunit):
        return r"Jy beam$^{-1}$", rf"Jy beam$^{{-1}}$ {KMS}", "Flux density (Jy)"
    return obspars.bunit, f"{obspars.bunit} {KMS}", f"Sum over aperture ({obspars.bunit})"


def _levels(peak: float, model_peak: float) -> np.ndarray:
    """Contour levels at fractions of the data's peak; of the model's own peak when none falls in its range."""
    levels = np.array(CONTOUR_FRACTIONS) * peak
    if peak <= 0 or not np.any((levels > 0) & (levels < model_peak)):
        levels = np.array(CONTOUR_FRACTIONS) * model_peak
    return levels[levels > 0]


def _decorate_map(ax: Axes, obspars: ObsPars, title: str) -> None:
    extent, _, _ = _sky(obspars)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel(r"$\Delta$RA (arcsec)")
    ax.set_ylabel(r"$\Delta$Dec (arcsec)")
    ax.set_title(title)
    bmaj = obspars.beam[0]
    pad = max(0.6 * bmaj, 1.5 * obspars.cellsize)
    # Lower-left corner: the largest dRA (left, east) and the smallest dDec.
    ax.add_patch(beam_ellipse(obspars.beam, (extent[0] - pad, extent[2] + pad), zorder=5))
    ax.tick_params(direction="in", top=True, right=True)


def _draw_slit(ax: Axes, obspars: ObsPars, centre: tuple[float, float], pa: float) -> None:
    """The pv slit along PA through the centre, with a marker on the receding end."""
    dx, dy = major_axis_direction(pa)
    half = 0.5 * math.hypot(obspars.nx, obspars.ny)
    xs = centre[0] + np.array([-half, half]) * dx
    ys = centre[1] + np.array([-half, half]) * dy
    ra, dec = _pixel_to_sky(obspars, xs, ys)
    ax.plot(ra, dec, ls="--", lw=0.8, color="0.2", zorder=4)
    cra, cdec = _pixel_to_sky(obspars, centre[0], centre[1])
    ax.plot([cra], [cdec], marker="+", ms=10, mew=1.5, color="black", zorder=6)


# ----------------------------------------------------------------------------------------------- diagnostics
def plot_diagnostics(
    data: np.ndarray,
    model: np.ndarray | None,
    obspars: ObsPars,
    *,
    pa: float,
    centre: tuple[float, float],
    galaxy: str,
    path: str | Path,
    rms: float | None = None,
    mask: np.ndarray | None = None,
    vsys: float | None = None,
) -> Path:
    """Write the diagnostic figure of a fit: moment maps, spectrum, position-velocity diagram and residuals.

    Panels (2 x 3 with a model): (a) data moment 0 with model moment-0 contours; (b) data moment 1; (c) model
    moment 1 on the same velocity scale; (d) integrated spectrum of data (steps) and model (line) over the mask's
    footprint; (e) data pv diagram along ``pa`` through ``centre`` with model contours; (f) residual moment 0
    (data - model, both summed over the mask). Without a model, panels (a), (b), (d), (e) only (2 x 2).

    Parameters
    ----------
    data
        Observed cube ``(nv, ny, nx)``; NaNs are ignored.
    model
        Model cube of the same shape, or ``None``.
    obspars
        Grid, beam, velocities and sky reference of the cube.
    pa
        Position angle (degrees, north through east, receding side) of the pv slit.
    centre
        0-based pixel coordinates ``(x, y)`` of the slit centre (the kinematic centre).
    galaxy
        Name used in the title (empty: no title).
    path
        Output file (PNG, or any format matplotlib writes); parent directories are created.
    rms
        Noise per voxel; ``None`` estimates it from the negative values of the data.
    mask
        Boolean signal mask ``(nv, ny, nx)``; ``None`` makes one with :func:`display_mask` (smooth and clip at
        3 sigma).
    vsys
        Systemic velocity (km/s): centre of the velocity colour scale and a reference line in the spectrum and
        pv diagram.

    Returns
    -------
    Path
        The written file.
    """
    data, model, mask, thresholds = _checked_inputs(data, model, obspars, rms, mask, galaxy)
    maps = diagnostic_maps(data, model, obspars, pa=pa, centre=centre, mask=mask, thresholds=thresholds, vsys=vsys)
    if model is None:
        fig = Figure(figsize=DIAGNOSTICS_FIGSIZE_NO_MODEL, layout="constrained")
        axes = fig.subplots(2, 2)
        ax_m0, ax_m1, ax_spec, ax_pv = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    else:
        fig = Figure(figsize=DIAGNOSTICS_FIGSIZE, layout="constrained")
        axes = fig.subplots(2, 3)
        ax_m0, ax_m1, ax_mod1 = axes[0]
        ax_spec, ax_pv, ax_res = axes[1]
    letters = iter("abcdef" if model is not None else "abcd")
    _panel_moment0(fig, ax_m0, maps, obspars, next(letters))
    _panel_velocity(fig, ax_m1, maps.mom1, maps, obspars, f"({next(letters)}) Moment 1: data")
    if model is not None:
        _panel_velocity(fig, ax_mod1, maps.model_mom1, maps, obspars, f"({next(letters)}) Moment 1: model")
    _panel_spectrum(ax_spec, maps, obspars, next(letters))
    _panel_pv(fig, ax_pv, maps, obspars, next(letters))
    if model is not None:
        _panel_residual(fig, ax_res, maps, obspars, next(letters))
    heading, size = _heading(data, obspars, galaxy, thresholds[2])
    fig.suptitle(heading, fontsize=size)
    return save_figure(fig, path)


@dataclass
class DiagnosticMaps:
    """What the diagnostic figure draws, computed from the cubes (see :func:`diagnostic_maps`).

    ``mom0``/``mom1`` are the data's moment maps in the mask, ``spec`` its spectrum over the mask's footprint (Jy for
    a cube in Jy/beam), ``pv`` its position-velocity diagram along ``pa`` through ``centre`` at ``offsets`` (pixels;
    ``offsets_arcsec`` in arcsec). The ``model_*`` fields are None without a model: ``model_mom0`` over the whole
    cube (for contours), ``model_mom1`` where the model would be detected with the data's noise, ``residual`` the
    data's minus the model's moment 0, both in the data's mask. ``vrange`` is the velocity colour scale shared by
    data and model (centred on ``vsys`` when given).
    """

    pa: float
    centre: tuple[float, float]
    vsys: float | None
    mom0: np.ndarray
    mom1: np.ndarray
    spec: np.ndarray
    offsets: np.ndarray
    offsets_arcsec: np.ndarray
    pv: np.ndarray
    vrange: tuple[float, float]
    model_mom0: np.ndarray | None = None
    model_mom1: np.ndarray | None = None
    model_spec: np.ndarray | None = None
    model_pv: np.ndarray | None = None
    residual: np.ndarray | None = None

    @property
    def mom0_peak(self) -> float:
        return float(np.nanmax(self.mom0)) if np.any(self.mom0 > 0) else 1.0

    @property
    def pv_peak(self) -> float:
        return float(np.max(self.pv)) if np.max(self.pv) > 0 else 1.0


def _checked_inputs(
    data: np.ndarray,
    model: np.ndarray | None,
    obspars: ObsPars,
    rms: float | None,
    mask: np.ndarray | None,
    galaxy: str,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, tuple[float, float, float]]:
    """The cubes as float arrays of the grid's shape, the mask (given, or made as :func:`display_mask` makes it; every
    finite voxel when empty) and the mask's ``(threshold, seed, rms)``."""
    data = np.asarray(data, dtype=float)
    if data.shape != obspars.shape:
        raise ValueError(f"data has shape {data.shape} but obspars describes a cube of shape {obspars.shape}")
    if model is not None:
        model = np.asarray(model, dtype=float)
        if model.shape != data.shape:
            raise ValueError(f"model has shape {model.shape} but data has shape {data.shape}")
    thresholds = _mask_thresholds(data, obspars, rms, 3.0)
    if mask is None:
        mask = _apply_thresholds(data, obspars, thresholds[0], thresholds[1])
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ValueError(f"mask has shape {mask.shape} but data has shape {data.shape}")
        mask = mask & np.isfinite(data)
    if not mask.any():
        log.warning("%s: the signal mask is empty; moment maps are drawn from every channel", galaxy or "cube")
        mask = np.isfinite(data)
    return data, model, mask, thresholds


def diagnostic_maps(
    data: np.ndarray,
    model: np.ndarray | None,
    obspars: ObsPars,
    *,
    pa: float,
    centre: tuple[float, float],
    mask: np.ndarray,
    thresholds: tuple[float, float, float],
    vsys: float | None = None,
) -> DiagnosticMaps:
    """The moment maps, spectra and pv diagrams of the data (and model) that :func:`plot_diagnostics` draws.

    ``thresholds`` are the data mask's ``(threshold, seed, rms)``: the model's moment 1 is drawn where the model
    would be detected with them. Other arguments as for :func:`plot_diagnostics` (``mask`` required)."""
    velocities, dv = obspars.velocities, obspars.dv
    mom0 = moment0(data, dv, mask)
    mom1 = moment1(data, velocities, mask)
    mom1[~(mom0 > 0)] = np.nan
    aperture = mask.any(axis=0)
    if not aperture.any():
        aperture = np.ones(aperture.shape, dtype=bool)
    scale = obspars.beam_area_pixels if _is_jy_per_beam(obspars.bunit) else 1.0
    width = max(1.0, obspars.beam[1] / obspars.cellsize)
    offsets, pv = pv_diagram(data, centre, pa, width=width)
    maps = DiagnosticMaps(
        pa=pa,
        centre=centre,
        vsys=vsys,
        mom0=mom0,
        mom1=mom1,
        spec=spectrum(data, np.broadcast_to(aperture, data.shape)) / scale,
        offsets=offsets,
        offsets_arcsec=offsets * obspars.cellsize,
        pv=pv,
        vrange=_velocity_range(mom1, velocities, dv, vsys),
    )
    if model is not None:
        maps.model_mom0 = moment0(model, dv)
        maps.model_mom1 = moment1(model, velocities, _apply_thresholds(model, obspars, *thresholds[:2]))
        maps.model_spec = spectrum(model, np.broadcast_to(aperture, model.shape)) / scale
        maps.model_pv = pv_diagram(model, centre, pa, width=width)[1]
        maps.residual = mom0 - moment0(model, dv, mask)
    return maps


def _velocity_range(mom1: np.ndarray, velocities: np.ndarray, dv: float, vsys: float | None) -> tuple[float, float]:
    """The velocity colour scale: the data's 1st-99th percentiles, symmetric about ``vsys`` when given."""
    finite = mom1[np.isfinite(mom1)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (velocities[0], velocities[-1])
    if vsys is not None:
        half = max(abs(hi - vsys), abs(vsys - lo), dv)
        return vsys - half, vsys + half
    return (lo, hi) if hi > lo else (lo - dv, hi + dv)


def _panel_moment0(fig: Figure, ax: Axes, maps: DiagnosticMaps, obspars: ObsPars, letter: str) -> None:
    """(a) the data's moment 0 with the model's contours."""
    extent, dra, ddec = _sky(obspars)
    mom0_unit = _units(obspars)[1]
    im = ax.imshow(maps.mom0, origin="lower", extent=extent, cmap=MAP_CMAP, vmin=0.0, vmax=maps.mom0_peak)
    fig.colorbar(im, ax=ax, label=mom0_unit, shrink=0.9)
    if maps.model_mom0 is not None:
        model_peak = float(np.nanmax(maps.model_mom0))
        levels = _levels(maps.mom0_peak, model_peak)
        if levels.size and model_peak > levels[0]:
            ax.contour(dra, ddec, maps.model_mom0, levels=levels, colors="black", linewidths=0.8)
    title = f"({letter}) Moment 0: data" + (", model contours" if maps.model_mom0 is not None else "")
    _decorate_map(ax, obspars, title)


def _panel_velocity(
    fig: Figure, ax: Axes, mom1: np.ndarray, maps: DiagnosticMaps, obspars: ObsPars, title: str
) -> None:
    """(b), (c): a moment-1 map on the shared velocity scale, with the pv slit."""
    extent = _sky(obspars)[0]
    vmin, vmax = maps.vrange
    im = ax.imshow(mom1, origin="lower", extent=extent, cmap=VELOCITY_CMAP, vmin=vmin, vmax=vmax)
    fig.colorbar(im, ax=ax, label=f"Velocity ({KMS})", shrink=0.9)
    _draw_slit(ax, obspars, maps.centre, maps.pa)
    _decorate_map(ax, obspars, title)


def _panel_spectrum(ax: Axes, maps: DiagnosticMaps, obspars: ObsPars, letter: str) -> None:
    """(d) the integrated spectra of data (steps) and model (line) over the mask's footprint."""
    velocities, dv = obspars.velocities, obspars.dv
    ax.step(velocities, maps.spec, where="mid", color="C0", lw=1.3, label="data")
    if maps.model_spec is not None:
        ax.plot(velocities, maps.model_spec, color="C3", lw=1.5, label="model")
    ax.axhline(0.0, color="0.5", lw=0.6)
    if maps.vsys is not None:
        ax.axvline(maps.vsys, color="0.4", ls=":", lw=1.0, label=r"$V_{\rm sys}$")
    ax.set_xlim(velocities[0] - 0.5 * dv, velocities[-1] + 0.5 * dv)
    ax.set_xlabel(f"Velocity ({KMS})")
    ax.set_ylabel(_units(obspars)[2])
    ax.set_title(f"({letter}) Integrated spectrum (mask footprint)")
    ax.legend(loc="best", frameon=False, fontsize="small")
    ax.tick_params(direction="in", top=True, right=True)


def _panel_pv(fig: Figure, ax: Axes, maps: DiagnosticMaps, obspars: ObsPars, letter: str) -> None:
    """(e) the data's pv diagram with the model's contours, limited to the part of the slit inside the cube."""
    velocities, dv = obspars.velocities, obspars.dv
    offsets_arcsec = maps.offsets_arcsec
    doff = offsets_arcsec[1] - offsets_arcsec[0] if offsets_arcsec.size > 1 else obspars.cellsize
    pv_extent = (
        offsets_arcsec[0] - 0.5 * doff,
        offsets_arcsec[-1] + 0.5 * doff,
        velocities[0] - 0.5 * dv,
        velocities[-1] + 0.5 * dv,
    )
    im = ax.imshow(maps.pv, origin="lower", extent=pv_extent, aspect="auto", cmap=MAP_CMAP, vmin=0.0, vmax=maps.pv_peak)
    fig.colorbar(im, ax=ax, label=_units(obspars)[0], shrink=0.9)
    if maps.model_pv is not None:
        model_pv_peak = float(np.max(maps.model_pv))
        levels = _levels(maps.pv_peak, model_pv_peak)
        if levels.size and model_pv_peak > levels[0]:
            ax.contour(offsets_arcsec, velocities, maps.model_pv, levels=levels, colors="black", linewidths=0.8)
    ax.axvline(0.0, color="0.4", ls=":", lw=0.8)
    if maps.vsys is not None:
        ax.axhline(maps.vsys, color="0.4", ls=":", lw=0.8)
    inside = _slit_inside(obspars, maps.centre, maps.pa, maps.offsets)
    if inside.any():
        ax.set_xlim(offsets_arcsec[inside][0] - 0.5 * doff, offsets_arcsec[inside][-1] + 0.5 * doff)
    ax.set_xlabel(f"Offset along PA = {maps.pa:.1f}° (arcsec; + receding)")
    ax.set_ylabel(f"Velocity ({KMS})")
    ax.set_title(f"({letter}) Position-velocity diagram")
    ax.tick_params(direction="in", top=True, right=True)


def _panel_residual(fig: Figure, ax: Axes, maps: DiagnosticMaps, obspars: ObsPars, letter: str) -> None:
    """(f) the residual moment 0 (data - model in the data's mask), the model's outline and the residual flux."""
    extent, dra, ddec = _sky(obspars)
    residual = maps.residual
    finite = residual[np.isfinite(residual)]
    span = float(np.max(np.abs(finite))) if finite.size else 0.0
    span = span if span > 0 else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    im = ax.imshow(residual, origin="lower", extent=extent, cmap=RESIDUAL_CMAP, norm=norm)
    fig.colorbar(im, ax=ax, label=_units(obspars)[1], shrink=0.9)
    model_peak = float(np.nanmax(maps.model_mom0))
    outline = _levels(maps.mom0_peak, model_peak)[:1]
    if outline.size and model_peak > outline[0]:
        ax.contour(dra, ddec, maps.model_mom0, levels=outline, colors="0.3", linewidths=0.8, linestyles="--")
    total = float(np.sum(maps.mom0))
    if total > 0:
        flux = f"residual flux {100 * float(np.sum(residual)) / total:+.1f}%"
        ax.text(0.97, 0.03, flux, transform=ax.transAxes, ha="right", va="bottom", fontsize="small")
    _decorate_map(ax, obspars, f"({letter}) Residual moment 0 (data - model)")


def _heading(data: np.ndarray, obspars: ObsPars, galaxy: str, rms: float) -> tuple[str, str]:
    """The figure's title (the galaxy, then beam, pixel, channel and noise) and its font size."""
    bmaj, bmin, bpa = obspars.beam
    subtitle = (
        f"beam {bmaj:.2g}″ × {bmin:.2g}″, PA {bpa:.0f}°; pixel {obspars.cellsize:.3g}″; channel {obspars.dv:.3g} {KMS}"
    )
    finite = data[np.isfinite(data)]
    if finite.size and rms > 1e-6 * float(np.max(np.abs(finite))):
        subtitle += f"; rms {rms:.3g} {_units(obspars)[0]}"
    heading = f"{galaxy}\n" if galaxy else ""
    return heading + subtitle, "large" if galaxy else "medium"


def _slit_inside(obspars: ObsPars, centre: tuple[float, float], pa: float, offsets: np.ndarray) -> np.ndarray:
    dx, dy = major_axis_direction(pa)
    xs = centre[0] + offsets * dx
    ys = centre[1] + offsets * dy
    return (xs >= -0.5) & (xs <= obspars.nx - 0.5) & (ys >= -0.5) & (ys <= obspars.ny - 0.5)


def save_figure(fig: Figure, path: str | Path, **kwargs: object) -> Path:
    """Write a figure (its folder made), log it and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, **kwargs)
    log.info("wrote %s", path)
    return path


def plot_failure(path: str | Path, galaxy: str, stage: str, message: str) -> Path:
    """A figure that says why there is nothing to show: the galaxy's failure message, wrapped."""
    import textwrap

    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    ax.set_axis_off()
    wrapped = "\n".join(textwrap.wrap(message, 90)[:12])
    ax.text(0.02, 0.95, f"{galaxy}: {stage} failed", fontsize=14, weight="bold", va="top", transform=ax.transAxes)
    ax.text(0.02, 0.75, wrapped, fontsize=9, va="top", family="monospace", transform=ax.transAxes)
    return save_figure(fig, path)
