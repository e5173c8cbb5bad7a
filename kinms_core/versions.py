"""Versions of the software a result depends on, recorded in every fit's summary and in a survey's provenance."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata

__all__ = ["FIT_PACKAGES", "SURVEY_PACKAGES", "software_versions"]

#: The packages that determine a fit's result.
FIT_PACKAGES = ("kinms_core", "numpy", "scipy", "astropy", "emcee", "pyfftw", "h5py")
#: The packages a survey's results (fits, catalogue, figures, the workflow) depend on.
SURVEY_PACKAGES = (
    *FIT_PACKAGES,
    *("pandas", "matplotlib", "corner", "spectral-cube", "radio-beam", "snakemake"),
)


def software_versions(packages: Sequence[str] = FIT_PACKAGES) -> dict[str, str]:
    """The versions of Python and of ``packages`` (``"not installed"`` for a missing one)."""
    out = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
