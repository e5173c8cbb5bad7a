"""Drop-in for the seed tutorial's ``KinMS_plotter(...).makeplots()`` call.

``KinMS_plotter(fdata, xsize, ysize, vsize, cellsize, dv, beamsize, posang=..., overcube=model, rms=error)
.makeplots()`` draws :func:`kinms_core.plots.plot_diagnostics` for a cube in KinMS's ``(x, y, v)`` axis order, with
the pv slit through the cube centre ``(nx / 2, ny / 2)``, and writes it to a file instead of showing it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..obspars import ObsPars
from ..plots import plot_diagnostics

__all__ = ["KinMS_plotter"]

log = logging.getLogger(__name__)


class KinMS_plotter:  # noqa: N801 - KinMS's class name
    """The tutorial's plotter as a thin adapter over :func:`kinms_core.plots.plot_diagnostics`.

    Parameters
    ----------
    f
        Data cube in KinMS's ``(x, y, v)`` order.
    xsize, ysize, vsize
        Cube sizes in arcsec, arcsec and km/s.
    cellsize, dv
        Pixel size (arcsec) and channel width (km/s).
    beamsize
        Scalar or ``[bmaj, bmin, bpa]`` (arcsec, arcsec, degrees north through east).
    posang
        Position angle of the pv slit (degrees); ``None`` is 0.
    overcube
        Model cube in ``(x, y, v)`` order to overplot, or ``None``.
    rms
        Noise per voxel; ``None`` or 0 estimates it from the data.
    savepath, savename
        Directory and file stem of the figure; default ``./KinMS_plotter``.
    pdf
        Write a PDF instead of a PNG.
    title
        Figure title (KinMS's boolean ``title`` is accepted and gives no title).
    **ignored
        Other KinMS keywords (``pvdthick``, ``rmsfac``, ...), accepted and ignored.
    """

    def __init__(
        self,
        f: np.ndarray,
        xsize: float,
        ysize: float,
        vsize: float,
        cellsize: float,
        dv: float,
        beamsize: float | Sequence[float],
        posang: float | None = None,
        overcube: np.ndarray | None = None,
        rms: float | None = None,
        savepath: str | Path | None = None,
        savename: str | None = None,
        pdf: bool = False,
        title: str | bool | None = None,
        **ignored: object,
    ) -> None:
        if ignored:
            log.debug("KinMS_plotter ignores %s", sorted(ignored))
        self.obspars = ObsPars.from_tutorial(
            {"xsize": xsize, "ysize": ysize, "vsize": vsize, "cellsize": cellsize, "dv": dv, "beamsize": beamsize}
        )
        self.data = self._to_vyx(f, "f")
        self.model = None if overcube is None else self._to_vyx(overcube, "overcube")
        self.posang = 0.0 if posang is None else float(np.atleast_1d(posang)[0])
        self.rms = float(rms) if rms else None
        self.title = title if isinstance(title, str) else ""
        suffix = ".pdf" if pdf else ".png"
        self.path = Path(savepath if savepath is not None else ".") / f"{savename or 'KinMS_plotter'}{suffix}"

    def _to_vyx(self, cube: np.ndarray, name: str) -> np.ndarray:
        cube = np.asarray(cube, dtype=float)
        op = self.obspars
        if cube.shape != (op.nx, op.ny, op.nv):
            raise ValueError(
                f"{name} has shape {cube.shape} but xsize/cellsize, ysize/cellsize, vsize/dv give "
                f"(x, y, v) = {(op.nx, op.ny, op.nv)}"
            )
        return np.transpose(cube, (2, 1, 0))

    def makeplots(self, **ignored: object) -> Path:
        """Write the figure and return its path (KinMS's ``block``, ``plot2screen``, ... are ignored)."""
        path = plot_diagnostics(
            self.data,
            self.model,
            self.obspars,
            pa=self.posang,
            centre=self.obspars.centre_pixel,
            galaxy=self.title,
            path=self.path,
            rms=self.rms,
        )
        log.info("KinMS_plotter wrote %s", path)
        return path
