"""Exception types of kinms_core: what a survey records as a galaxy's failure, and everything else.

An :class:`InputError` means "this galaxy cannot be fitted as given" (a bad or unreadable cube, a missing beam or
rest frequency, no emission, bad settings, a model that cannot fall inside the cube). A survey records it as the
galaxy's ``failed`` row with its message and carries on. Any other exception is a bug or a transient fault (a full
disk, a network file system hiccup): the job fails with a non-zero exit, so that Snakemake retries it and a rerun
redoes it.

Every class derives from :class:`ValueError` (or, for a missing file, also :class:`FileNotFoundError`), so callers
that caught those before keep working.
"""

from __future__ import annotations

__all__ = [
    "CorruptFileError",
    "CubeError",
    "ImplausibleDataError",
    "InputError",
    "KinmsCoreError",
    "MissingInputError",
    "ModelOutsideCubeError",
    "NoBeamError",
    "NoEmissionError",
    "OverwriteError",
    "RestFrequencyError",
    "SettingsError",
    "StageFailedError",
    "UsageError",
]


class KinmsCoreError(Exception):
    """Base of every error kinms_core raises on purpose."""


class InputError(KinmsCoreError, ValueError):
    """The input (cube, header, settings, sheet) cannot be fitted as given; the message says what to change."""


class MissingInputError(FileNotFoundError, InputError):
    """An input file (cube, sheet, settings, prepared folder) does not exist."""


class CubeError(InputError):
    """The cube cannot be read or used: not FITS, truncated, wrong axes, unknown units, blank data, too large."""


class NoBeamError(CubeError):
    """The cube has no usable beam and none was given."""


class RestFrequencyError(CubeError):
    """A frequency axis (or a cube in K) needs a rest frequency that neither the header nor the caller gives."""


class NoEmissionError(InputError):
    """The signal mask found no emission above the detection threshold."""


class SettingsError(InputError):
    """Fit settings, survey config or galaxies sheet hold a bad key or value."""


class ModelOutsideCubeError(InputError):
    """The model's emission falls entirely outside the cube (a trial centre or velocity far off the data)."""


class ImplausibleDataError(CubeError):
    """The cube reads, but its values cannot be a continuum-subtracted line cube: blank sentinels such as 1e30,
    emission detected nearly everywhere (continuum left in), first guesses no galaxy could have."""


class CorruptFileError(InputError):
    """A file that an earlier stage wrote (status, prepared folder, fit products) is unreadable or not what that
    stage writes: the message names the stage to run again."""


class StageFailedError(InputError):
    """An earlier stage recorded this galaxy's failure, so this stage cannot run (the message passes it on)."""


class UsageError(InputError):
    """The command asks for something impossible: an output folder that is a file, a path too long, ..."""


class OverwriteError(UsageError):
    """An output would be written over one of the inputs."""
