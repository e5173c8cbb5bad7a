"""Mock observations: a FITS cube of a known galaxy, with realistic noise, from one row of a table of true parameters.

A row (a mapping, e.g. one line of ``config/mocks.csv`` read with :func:`read_mock_table`) holds

- the grid: ``nx, ny, nv`` (pixels, channels), ``cellsize`` (arcsec), ``dv`` (km/s), ``bmaj`` and optionally
  ``bmin`` (arcsec, default ``bmaj``) and ``bpa`` (deg, default 0), ``ra``, ``dec`` (deg, of the reference pixel,
  default 150 and 30), optionally ``x_ref``, ``y_ref`` (0-based reference pixel, default the cube centre
  :attr:`~kinms_core.obspars.ObsPars.centre_pixel`) and ``v_start`` (radio km/s of channel 0, default such that
  ``vsys`` falls at the cube's central channel coordinate ``nv / 2``);
- the galaxy, in the parameters of :mod:`kinms_core.parametric` (exponential disc, arctan rotation curve):
  ``flux`` (Jy km/s), ``pa``, ``inc`` (deg), ``xc``, ``yc`` (arcsec from the reference pixel along +x, +y; default
  0), ``vsys`` (absolute radio km/s), ``sigma`` (km/s, default 0), ``scalerad``, ``rturn`` (arcsec), ``vflat``
  (km/s);
- the observation: ``rms`` (Jy/beam, the noise per voxel), ``correlated`` (default true: beam-correlated noise),
  ``n_clouds`` (cloudlets of the true model, default 2^17), ``format`` (``vrad``, ``freq``, ``stokes4d`` or
  ``freq_stokes4d``), ``restfreq`` (Hz, default CO(2-1), 230.538 GHz), ``seed`` (optional; see
  :func:`simulate_survey_row`);
- a ``galaxy`` name, and free text in ``notes``.

Empty cells (None, NaN, "") take the defaults. Unknown columns are an error (a misspelt column would otherwise be
silently ignored).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from .beam import beam_axes
from .cells import as_bool, is_missing
from .constants import C_KMS, FWHM_TO_SIGMA
from .errors import MissingInputError, SettingsError
from .fitsio import obspars_header
from .obspars import ObsPars
from .parametric import GalaxyModel, ModelSpec, phase_centre
from .safe_files import atomic_path

__all__ = [
    "CO21_HZ",
    "FORMATS",
    "MOCK_COLUMNS",
    "TRUTH_COLUMNS",
    "beam_correlated_noise",
    "mock_obspars",
    "mock_parameters",
    "read_mock_table",
    "simulate_cube",
    "simulate_survey_row",
]

log = logging.getLogger(__name__)

#: Rest frequency of CO(2-1) in Hz, the default of ``format: freq``.
CO21_HZ = 230.538e9
#: Output formats: plain VRAD axis, FREQ axis (Hz, descending with channel), and either with a 4th Stokes axis.
FORMATS = ("vrad", "freq", "stokes4d", "freq_stokes4d")

_REQUIRED = ("galaxy", "nx", "ny", "nv", "cellsize", "dv", "bmaj", "flux", "pa", "inc", "vsys", "scalerad", "vflat")
_REQUIRED += ("rturn", "rms")
_DEFAULTS: dict[str, Any] = {
    "bmin": None,
    "bpa": 0.0,
    "ra": 150.0,
    "dec": 30.0,
    "x_ref": None,
    "y_ref": None,
    "v_start": None,
    "xc": 0.0,
    "yc": 0.0,
    "sigma": 0.0,
    "correlated": True,
    "n_clouds": 2**17,
    "format": "vrad",
    "restfreq": CO21_HZ,
    "seed": None,
    "notes": "",
}
#: Every column a mock table may hold.
MOCK_COLUMNS = _REQUIRED + tuple(_DEFAULTS)
#: Columns that are true values of the fitted parameters (exponential disc, arctan rotation curve).
TRUTH_COLUMNS = ModelSpec().parameter_names


def _as_bool(name: str, value: Any) -> bool:
    flag = as_bool(value)
    if flag is None:
        raise SettingsError(f"mock column {name}={value!r}: give true or false")
    return flag


def mock_parameters(row: Mapping[str, Any]) -> dict[str, Any]:
    """A mock row with the defaults filled in and every value checked and converted (idempotent).

    Raises
    ------
    SettingsError
        Naming the galaxy and the column: unknown or missing columns, non-numbers, values out of range.
    """
    galaxy = row.get("galaxy")
    label = f"mock {galaxy!r}" if not is_missing(galaxy) else "mock row"
    unknown = sorted(set(row) - set(MOCK_COLUMNS))
    if unknown:
        raise SettingsError(f"{label}: unknown column(s) {unknown}; known columns are {list(MOCK_COLUMNS)}")
    missing = [name for name in _REQUIRED if is_missing(row.get(name))]
    if missing:
        raise SettingsError(f"{label}: missing value(s) for {missing}")
    out: dict[str, Any] = {}
    for name in MOCK_COLUMNS:
        value = row.get(name)
        out[name] = _DEFAULTS.get(name) if is_missing(value) else value
    out["galaxy"] = str(out["galaxy"])
    _check_numbers(out, label)
    if out["bmin"] is None:
        out["bmin"] = out["bmaj"]
    out["correlated"] = _as_bool("correlated", out["correlated"])
    out["format"] = str(out["format"]).strip().lower()
    if out["format"] not in FORMATS:
        raise SettingsError(f"{label}: format {out['format']!r} is unknown; choose one of {list(FORMATS)}")
    if out["seed"] is not None:
        seed = float(out["seed"])
        if seed != int(seed) or seed < 0:
            raise SettingsError(f"{label}: seed must be a non-negative integer, got {out['seed']!r}")
        out["seed"] = int(seed)
    return out


def _check_numbers(out: dict[str, Any], label: str) -> None:
    """Convert the integer and float columns of a mock row in place, refusing non-numbers and values out of range."""
    for name in ("nx", "ny", "nv", "n_clouds"):
        value = float(out[name])
        if value != int(value) or value < 1:
            raise SettingsError(f"{label}: {name} must be a positive integer, got {out[name]!r}")
        out[name] = int(value)
    floats = ("cellsize", "dv", "bmaj", "bpa", "ra", "dec", "flux", "pa", "inc", "xc", "yc", "vsys", "sigma")
    floats += ("scalerad", "vflat", "rturn", "rms", "restfreq")
    for name in floats + ("bmin", "x_ref", "y_ref", "v_start"):
        if out[name] is None:
            continue
        try:
            out[name] = float(out[name])
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{label}: {name} must be a number, got {out[name]!r}") from exc
        if not math.isfinite(out[name]):
            raise SettingsError(f"{label}: {name} must be finite, got {out[name]!r}")
    for name in ("cellsize", "dv", "bmaj", "flux", "scalerad", "rturn", "restfreq"):
        if out[name] <= 0:
            raise SettingsError(f"{label}: {name} must be positive, got {out[name]!r}")
    if out["rms"] < 0 or out["sigma"] < 0 or out["vflat"] < 0:
        raise SettingsError(f"{label}: rms, sigma and vflat must not be negative")
    if not 0.0 <= out["inc"] <= 90.0:
        raise SettingsError(f"{label}: inc must lie in [0, 90] degrees, got {out['inc']!r}")


def mock_obspars(row: Mapping[str, Any]) -> ObsPars:
    """The grid of a mock row: reference pixel at the cube centre and ``vsys`` mid-band unless the row says
    otherwise."""
    r = mock_parameters(row)
    op = ObsPars(nx=r["nx"], ny=r["ny"], nv=r["nv"], cellsize=r["cellsize"], dv=r["dv"], beam=(1.0, 1.0, 0.0))
    cx, cy = op.centre_pixel
    v_start = r["v_start"] if r["v_start"] is not None else r["vsys"] - r["dv"] * r["nv"] / 2.0
    return op.replace(
        beam=(r["bmaj"], r["bmin"], r["bpa"]),
        ra=r["ra"],
        dec=r["dec"],
        x_ref=cx if r["x_ref"] is None else r["x_ref"],
        y_ref=cy if r["y_ref"] is None else r["y_ref"],
        v_start=v_start,
        restfreq=r["restfreq"] if r["format"].startswith("freq") else None,
    )


def beam_correlated_noise(obspars: ObsPars, rms: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise ``(nv, ny, nx)`` of standard deviation ``rms`` whose spatial correlation has the beam's shape.

    White noise is convolved, channel by channel and periodically (so every pixel has the same statistics), with an
    elliptical Gaussian of FWHM ``bmaj / sqrt(2)`` by ``bmin / sqrt(2)`` at the beam's position angle, whose
    autocorrelation is the beam itself; the kernel is normalised to unit sum of squares, so the expected standard
    deviation is exactly ``rms``. Channels stay independent.
    """
    if not (math.isfinite(rms) and rms >= 0):
        raise SettingsError(f"rms must be a non-negative noise level (Jy/beam), got {rms!r}")
    bmaj, bmin, bpa = obspars.beam
    s_maj = bmaj / math.sqrt(2.0) * FWHM_TO_SIGMA / obspars.cellsize
    s_min = bmin / math.sqrt(2.0) * FWHM_TO_SIGMA / obspars.cellsize
    # Periodic pixel offsets (0, 1, ..., -2, -1) so the kernel is centred on pixel (0, 0) of the torus.
    dy, dx = np.meshgrid(
        np.fft.fftfreq(obspars.ny) * obspars.ny, np.fft.fftfreq(obspars.nx) * obspars.nx, indexing="ij"
    )
    (ux, uy), (vx, vy) = beam_axes(bpa)
    along, across = ux * dx + uy * dy, vx * dx + vy * dy
    kernel = np.exp(-0.5 * ((along / s_maj) ** 2 + (across / s_min) ** 2))
    kernel /= math.sqrt(float(np.sum(kernel**2)))
    white = rng.standard_normal(obspars.shape)
    smooth = np.fft.irfft2(np.fft.rfft2(white) * np.fft.rfft2(kernel), s=(obspars.ny, obspars.nx))
    return smooth * rms


def _header(op: ObsPars, r: Mapping[str, Any]) -> fits.Header:
    """The mock's FITS header: VRAD (m/s) or FREQ (Hz, radio convention) spectral axis, optional Stokes axis."""
    header = obspars_header(op)
    fmt = r["format"]
    if fmt.startswith("freq"):
        f0 = float(r["restfreq"])
        # Radio convention: f = f0 (1 - v / c), exactly linear in v, so a linear FREQ axis is exact; frequency
        # falls as the channel index (and the velocity) rises, as in ALMA cubes.
        header["CTYPE3"] = "FREQ"
        header["CUNIT3"] = "Hz"
        header["CRVAL3"] = f0 * (1.0 - op.velocity_start / C_KMS)
        header["CDELT3"] = -f0 * op.dv / C_KMS
        header["CRPIX3"] = 1.0
        header["RESTFRQ"] = f0
        header["SPECSYS"] = "LSRK"
    if fmt.endswith("stokes4d"):
        header["WCSAXES"] = 4
        header["CTYPE4"] = "STOKES"
        header["CUNIT4"] = ""
        header["CRVAL4"] = 1.0
        header["CDELT4"] = 1.0
        header["CRPIX4"] = 1.0
    header["OBJECT"] = r["galaxy"]
    header["ORIGIN"] = "kinms_core.simulate"
    return header


def simulate_cube(row: Mapping[str, Any], path: str | Path, *, seed: int) -> Path:
    """Write a mock cube FITS of the galaxy described by ``row`` (see the module's docstring for its columns).

    The true cube is the fit's own model, :class:`kinms_core.parametric.GalaxyModel` with the default families (an
    exponential disc with an arctan rotation curve, KinMS conventions), at the row's values of the fitted
    parameters (:data:`TRUTH_COLUMNS`), so that a fit of the written file recovers them. Gaussian noise of standard
    deviation ``rms`` is added, by default beam-correlated (:func:`beam_correlated_noise`) as in interferometric
    cubes, whose neighbouring pixels within a beam are not independent: errors are only tested honestly on noise
    like the real one. ``correlated: false`` gives white noise.

    Parameters
    ----------
    row
        True parameters, grid and observation (a mapping; empty cells take the defaults).
    path
        Output FITS file (its folder is made).
    seed
        Seeds both the true model's cloudlets and the noise: the same row and seed give a bit-identical file.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    SettingsError
        On an unknown or missing column or a bad value (naming the galaxy and the column), or a model that falls
        outside its cube.
    """
    r = mock_parameters(row)
    op = mock_obspars(r)
    truth = {name: float(r[name]) for name in ModelSpec().parameter_names}
    model_seed, noise_seed = np.random.SeedSequence(int(seed)).generate_state(2)
    # the fit's own model (default families), planned cheaply: it is used once
    model = GalaxyModel(
        op,
        ModelSpec(),
        n_clouds=r["n_clouds"],
        seed=int(model_seed),
        max_offset=math.hypot(*phase_centre(op, truth["xc"], truth["yc"])),
        planner_effort="FFTW_ESTIMATE",
    )
    cube = model.cube(truth)
    peak = float(cube.max())
    rng = np.random.default_rng(int(noise_seed))
    if r["rms"] > 0:
        if r["correlated"]:
            cube = cube + beam_correlated_noise(op, r["rms"], rng)
        else:
            cube = cube + rng.standard_normal(op.shape) * r["rms"]
    header = _header(op, r)
    header["HISTORY"] = f"kinms_core mock {r['galaxy']}: seed {int(seed)}, peak S/N {peak / max(r['rms'], 1e-300):.3g}"
    for name in TRUTH_COLUMNS:
        header["HISTORY"] = f"true {name} = {r[name]!r}"
    data = cube.astype(np.float32)
    if r["format"].endswith("stokes4d"):
        data = data[np.newaxis]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(data=data, header=header).writeto(tmp, output_verify="fix")
    log.info(
        "%s: wrote %s %s (%s, peak %.3g Jy/beam, rms %.3g, %s noise)",
        r["galaxy"],
        path,
        "x".join(map(str, data.shape[::-1])),
        r["format"],
        peak,
        r["rms"],
        "beam-correlated" if r["correlated"] else "white",
    )
    return path


def read_mock_table(path: str | Path) -> pd.DataFrame:
    """Read a mock table (CSV, ``#`` comment lines allowed) and check every row; galaxy names must be unique.

    Raises
    ------
    MissingInputError
        The table does not exist.
    SettingsError
        A row is bad (the message names it), a name repeats, or the table has no ``galaxy`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"mock table {path} does not exist: check `mocks:` in the config")
    table = pd.read_csv(path, comment="#", skipinitialspace=True, dtype={"galaxy": str, "format": str})
    table.columns = [str(c).strip() for c in table.columns]
    if "galaxy" not in table.columns:
        raise SettingsError(f"mock table {path} has no 'galaxy' column")
    table["galaxy"] = table["galaxy"].str.strip()
    repeated = sorted(table["galaxy"][table["galaxy"].duplicated()].unique())
    if repeated:
        raise SettingsError(f"mock table {path}: galaxy name(s) {repeated} appear more than once; names must be unique")
    for record in table.to_dict("records"):
        try:
            mock_parameters(record)
        except ValueError as exc:
            raise SettingsError(f"mock table {path}: {exc}") from exc
    return table


def _stable_seed(galaxy: str) -> int:
    """A seed from the galaxy's name that is the same on every machine and Python (unlike ``hash``)."""
    return zlib.crc32(galaxy.encode("utf-8"))


def simulate_survey_row(table_path: str | Path, galaxy: str, out_path: str | Path) -> Path:
    """Write the mock cube of ``galaxy`` from the table at ``table_path`` to ``out_path``.

    The seed is the row's ``seed`` column when it has one, else a stable function of the galaxy's name, so every
    mock of a survey gets its own noise and the same table always gives the same files.
    """
    table = read_mock_table(table_path)
    rows = table[table["galaxy"] == galaxy]
    if rows.empty:
        raise SettingsError(
            f"galaxy {galaxy!r} is not in the mock table {table_path}; it holds {sorted(table['galaxy'])}"
        )
    row = {k: v for k, v in rows.iloc[0].to_dict().items()}
    seed = mock_parameters(row)["seed"]
    return simulate_cube(row, out_path, seed=_stable_seed(galaxy) if seed is None else seed)
