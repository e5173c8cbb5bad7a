"""kinms_core: survey-scale kinematic modelling of spectral-line data cubes.

The public API: :class:`ObsPars` (grid, beam, WCS reference), :class:`CubeModel` and :func:`model_cube`
(KinMS-equivalent cloudlet model with FFTW beam convolution), :func:`write_cube` (FITS with WCS).
"""

from .fitsio import obspars_header, obspars_wcs, write_cube
from .model import DEFAULT_CLOUDS, CubeModel, model_cube
from .obspars import ObsPars

__all__ = [
    "DEFAULT_CLOUDS",
    "CubeModel",
    "ObsPars",
    "model_cube",
    "obspars_header",
    "obspars_wcs",
    "write_cube",
]
__version__ = "0.1.0"
