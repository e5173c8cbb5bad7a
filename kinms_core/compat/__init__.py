"""Drop-in adapters for the seed tutorial's KinMS-style calls, built on :mod:`kinms_core`.

The tutorial runs with only its imports changed::

    from kinms_core.compat import KinMS, KinMS_plotter
    from kinms_core.compat.gastimator import gastimator, corner_plot
"""

from .gastimator import corner_plot, gastimator
from .kinms import KinMS
from .plotter import KinMS_plotter

__all__ = ["KinMS", "KinMS_plotter", "corner_plot", "gastimator"]
