"""Physical and numerical constants shared by the package: one home each, taken from astropy."""

from __future__ import annotations

from astropy import constants
from astropy.stats import gaussian_fwhm_to_sigma

__all__ = ["C_KMS", "C_MS", "FWHM_TO_SIGMA"]

#: Speed of light in km/s and in m/s.
C_KMS: float = float(constants.c.to_value("km/s"))
C_MS: float = float(constants.c.to_value("m/s"))
#: A Gaussian's standard deviation per unit of its full width at half maximum, 1 / (2 sqrt(2 ln 2)).
FWHM_TO_SIGMA: float = float(gaussian_fwhm_to_sigma)
