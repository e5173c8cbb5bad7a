"""Shared fixtures: the seed tutorial's cube and galaxy."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from kinms_core import ObsPars

TUTORIAL_RAD = np.arange(0.0, 100.0, 0.3)


_WISDOM_FOLDER: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Keep the session's FFT plans (kinms_core.beam.shared_fftw_wisdom) out of the user's cache; the processes the
    tests start inherit the variable."""
    if "KINMS_CORE_FFTW_WISDOM" not in os.environ:
        _WISDOM_FOLDER.append(tempfile.mkdtemp(prefix="kinms_core_wisdom_"))
        os.environ["KINMS_CORE_FFTW_WISDOM"] = os.path.join(_WISDOM_FOLDER[0], "fftw_wisdom.json")


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _WISDOM_FOLDER:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("KINMS_CORE_FFTW_WISDOM", None)


def chain_steps(path: Path) -> int:
    """Steps saved in a fit's chain.h5 so far (0 while it cannot be read), read without HDF5's file lock, which
    would make the running fit wait for the test."""
    import h5py

    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f["mcmc"].attrs["iteration"])
    except (OSError, KeyError):
        return 0


def real_data_folder() -> Path | None:
    """The observed cubes: ../shared/real beside the repository (DESIGN.md), else $KINMS_REAL_DATA; None when neither
    exists."""
    for folder in (
        Path(__file__).resolve().parents[2] / "shared" / "real",
        Path(os.environ.get("KINMS_REAL_DATA", "")),
    ):
        if str(folder) not in ("", ".") and folder.is_dir():
            return folder
    return None


def tutorial_params(**changes: object) -> dict:
    """Model keywords of the tutorial's galaxy: exponential disc h=5", arctan vflat=200 rturn=2, inc 45, PA 270."""
    params = dict(
        inc=45.0,
        pa=270.0,
        sb_rad=TUTORIAL_RAD,
        sb_prof=np.exp(-TUTORIAL_RAD / 5.0),
        vel_rad=TUTORIAL_RAD,
        vel_prof=200.0 * 2.0 / np.pi * np.arctan(TUTORIAL_RAD / 2.0),
        int_flux=30.0,
    )
    params.update(changes)
    return params


@pytest.fixture
def tutorial_obspars() -> ObsPars:
    """The tutorial's 64x64x25 cube: 1"/pixel, 20 km/s channels, 4" circular beam."""
    return ObsPars(nx=64, ny=64, nv=25, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
