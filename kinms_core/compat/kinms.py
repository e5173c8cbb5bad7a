"""Drop-in for the seed tutorial's ``KinMS(...).model_cube()`` call (the KinMS 1/2 style API).

``KinMS(xs, ys, vs, cellSize, dv, beamSize, inc, sbProf=..., sbRad=..., velRad=..., velProf=..., intFlux=...,
posAng=..., fixSeed=True, fileName=...).model_cube()`` returns the cube in KinMS's ``(x, y, v)`` axis order, made by
:class:`kinms_core.CubeModel`. The beam position angle follows the FITS convention (north through east).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np

from ..fitsio import write_cube
from ..model import DEFAULT_CLOUDS, CubeModel
from ..obspars import ObsPars

__all__ = ["KinMS"]

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _cube_model(obspars: ObsPars, n_clouds: int, seed: int) -> CubeModel:
    """The tutorial makes a new KinMS object for every model of a fit; reusing the CubeModel (draws, PSF transform,
    FFT plans) of the same grid keeps those calls as fast as the reusable API."""
    return CubeModel(obspars, n_clouds=n_clouds, seed=seed, planner_effort="FFTW_ESTIMATE")


class KinMS:
    """The tutorial's KinMS call as a thin adapter over :class:`kinms_core.CubeModel`.

    Parameters follow KinMS: sizes ``xs, ys`` in arcsec, ``vs`` in km/s, ``cellSize`` arcsec/pixel, ``dv``
    km/s/channel, ``beamSize`` scalar or ``[bmaj, bmin, bpa]``, ``inc`` and ``posAng`` in degrees (scalars or
    profiles along ``velRad``), ``intFlux`` in Jy km/s, ``phaseCent`` arcsec, ``vOffset`` km/s. ``fixSeed=False``
    draws a fresh seed; ``fileName`` writes ``<fileName>_simcube.fits``.
    """

    def __init__(
        self,
        xs: float,
        ys: float,
        vs: float,
        cellSize: float,  # noqa: N803 - KinMS's keyword names
        dv: float,
        beamSize: float | Sequence[float],  # noqa: N803
        inc: float | Sequence[float],
        *,
        sbProf: Sequence[float],  # noqa: N803
        sbRad: Sequence[float],  # noqa: N803
        velProf: Sequence[float],  # noqa: N803
        velRad: Sequence[float] | None = None,  # noqa: N803
        intFlux: float = 1.0,  # noqa: N803
        posAng: float | Sequence[float] = 0.0,  # noqa: N803
        gasSigma: float | Sequence[float] = 0.0,  # noqa: N803
        diskThick: float | Sequence[float] = 0.0,  # noqa: N803
        phaseCent: Sequence[float] = (0.0, 0.0),  # noqa: N803
        vOffset: float = 0.0,  # noqa: N803
        vSys: float = 0.0,  # noqa: N803
        cleanOut: bool = False,  # noqa: N803
        nSamps: int = DEFAULT_CLOUDS,  # noqa: N803
        fixSeed: bool = True,  # noqa: N803
        seed: int = 0,
        fileName: str | None = None,  # noqa: N803
        ra: float = 0.0,
        dec: float = 0.0,
        restFreq: float = 230.538e9,  # noqa: N803
    ) -> None:
        self.obspars = ObsPars.from_tutorial(
            {"xsize": xs, "ysize": ys, "vsize": vs, "cellsize": cellSize, "dv": dv, "beamsize": beamSize}
        ).replace(ra=ra, dec=dec, restfreq=restFreq, v_start=vSys - dv * round(vs / dv) / 2.0)
        self.params = dict(
            inc=inc,
            pa=posAng,
            sb_rad=sbRad,
            sb_prof=sbProf,
            vel_rad=sbRad if velRad is None else velRad,
            vel_prof=velProf,
            int_flux=intFlux,
            gas_sigma=gasSigma,
            disk_thick=diskThick,
            phase_cent=tuple(phaseCent),
            v_offset=vOffset,
            clean=cleanOut,
        )
        self.seed = int(seed) if fixSeed else int(np.random.SeedSequence().entropy % 2**31)
        self.n_clouds = int(nSamps)
        self.file_name = fileName

    def model_cube(self, toplot: bool = False, **_ignored: object) -> np.ndarray:
        """The model in KinMS's ``(x, y, v)`` order; writes ``<fileName>_simcube.fits`` when a name was given.

        ``toplot=True`` saves the diagnostic figure of :class:`kinms_core.compat.KinMS_plotter`.
        """
        cube = _cube_model(self.obspars, self.n_clouds, self.seed).cube(**self.params)
        if self.file_name:
            path = write_cube(f"{self.file_name}_simcube.fits", cube, self.obspars)
            log.info("wrote %s", path)
        if toplot:
            from .plotter import KinMS_plotter

            op = self.obspars
            KinMS_plotter(
                cube.T,
                op.nx * op.cellsize,
                op.ny * op.cellsize,
                op.nv * op.dv,
                op.cellsize,
                op.dv,
                op.beam,
                posang=float(np.median(np.atleast_1d(self.params["pa"]))),
            ).makeplots()
        return cube.T
