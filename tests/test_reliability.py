"""A survey that never lies about a failure, never overwrites data and never runs on settings it was not given: the
error taxonomy, atomic writes, outputs never over inputs, validation before any job, sanity checks and the CLI's
one-line errors (the workflow's side is in test_workflow.py and test_fault_injection.py)."""

from __future__ import annotations

import errno
import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from bad_inputs import GRID, galaxy_cube

from kinms_core import write_cube
from kinms_core.catalogue import make_catalogue, make_catalogue_after_failure
from kinms_core.cli import main
from kinms_core.errors import (
    CorruptFileError,
    ImplausibleDataError,
    InputError,
    ModelOutsideCubeError,
    NoEmissionError,
    SettingsError,
)
from kinms_core.likelihood import FitData, LogPosterior
from kinms_core.safe_files import read_json_object, write_json_atomic
from kinms_core.sanity import check_guesses, chi2_is_extreme
from kinms_core.settings import load_settings
from kinms_core.status import RECOGNISED_ERRORS, run_stage, write_status
from kinms_core.survey import check_galaxy_settings, check_sheet, read_sheet

PARAMS = ("flux", "pa", "inc", "xc", "yc", "vsys", "sigma", "scalerad", "vflat", "rturn")

# A fit that takes seconds: few cloudlets, a short chain, six free parameters.
TINY_SETTINGS = """\
model: {n_clouds: 2048}
parameters: {flux: {fixed: true}, xc: {fixed: true}, yc: {fixed: true}, sigma: {fixed: true}}
fit: {nwalkers: 12, max_steps: 20, check_every: 10, optimiser_evaluations: 30, seed: 3}
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    """``kinms-core ARGS`` in a new process (its real stderr, with tracebacks if any)."""
    return subprocess.run(
        [sys.executable, "-m", "kinms_core.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture(scope="module")
def galaxy(tmp_path_factory):
    """A good cube, its prepared folder, tiny fit settings and a finished tiny fit."""
    folder = tmp_path_factory.mktemp("galaxy")
    cube = folder / "galaxy.fits"
    noise = np.random.default_rng(0).normal(size=GRID.shape).astype(np.float32) * 1e-3
    write_cube(cube, galaxy_cube() + noise, GRID)
    settings = folder / "fit.yaml"
    settings.write_text(TINY_SETTINGS)
    fit = folder / "fit"
    result = cli("fit", str(cube), "--settings", str(settings), "-o", str(fit), "--no-progress", "--no-plots")
    assert result.returncode == 0, result.stderr
    return {"cube": cube, "settings": settings, "prepared": fit / "prepared", "fit": fit}


# ------------------------------------------------------------------------------------ 2: never over an input
@pytest.mark.parametrize("name", ["cube.fits", "mask.fits"])
def test_prepare_refuses_to_write_over_its_input(galaxy, tmp_path, name):
    cube = tmp_path / name
    shutil.copy(galaxy["cube"], cube)
    before = cube.read_bytes()
    result = cli("prepare", str(cube), "-o", str(tmp_path))
    assert_one_line_error(result, 2, "would destroy the input")
    assert cube.read_bytes() == before
    assert not (tmp_path / "prepare.json").exists()


@pytest.mark.parametrize("name", ["model.fits", "residual.fits", "posterior.csv"])
def test_fit_refuses_to_write_over_its_input(galaxy, tmp_path, name):
    cube = tmp_path / name
    shutil.copy(galaxy["cube"], cube)
    before = cube.read_bytes()
    result = cli("fit", str(cube), "--settings", str(galaxy["settings"]), "-o", str(tmp_path), "--no-plots")
    assert_one_line_error(result, 2, "would destroy the input")
    assert cube.read_bytes() == before


def test_catalogue_and_simulate_refuse_to_write_over_their_inputs(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("galaxy,cube\na,a.fits\n")
    result = cli("catalogue", "--sheet", str(sheet), "--results", str(tmp_path), "-o", str(sheet))
    assert_one_line_error(result, 2, "would destroy the input")
    assert sheet.read_text() == "galaxy,cube\na,a.fits\n"
    result = cli("simulate", "--table", str(sheet), "--galaxy", "a", "-o", str(sheet))
    assert_one_line_error(result, 2, "would destroy the input")
    assert sheet.read_text() == "galaxy,cube\na,a.fits\n"


def test_fit_refuses_to_write_over_its_prepared_folder(galaxy, tmp_path):
    prepared = tmp_path / "prepared"
    shutil.copytree(galaxy["prepared"], prepared)
    result = cli("fit", str(prepared), "--settings", str(galaxy["settings"]), "-o", str(prepared), "--no-plots")
    assert_one_line_error(result, 2, "give another output folder")
    assert json.loads((prepared / "status.json").read_text())["stage"] == "prepare"
    # through the API: a fit output that is a prepared file (here by a link) is refused too
    from kinms_core.errors import OverwriteError
    from kinms_core.galaxy import fit_prepared

    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").symlink_to(prepared / "prepare.json")
    with pytest.raises(OverwriteError, match="would destroy the input"):
        fit_prepared(prepared, galaxy["settings"], out)


# --------------------------------------------------------------------- 3: only bad input is a recorded failure
def test_recognised_errors_are_the_input_error_family_only():
    assert RECOGNISED_ERRORS == (InputError,)


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        BlockingIOError(errno.EAGAIN, "chain.h5 stayed locked by another process for 60 s"),
        ValueError("a bug that happens to be a ValueError"),
        RuntimeError("a bug"),
    ],
    ids=["disk_full", "chain_locked", "plain_value_error", "bug"],
)
def test_transient_errors_and_bugs_fail_the_job_and_leave_no_status(tmp_path, error):
    write_status(tmp_path, "fit", "g")  # an earlier run's ok

    def work():
        raise error

    with pytest.raises(type(error)):
        run_stage("fit", "g", tmp_path, work, record_failure=True)
    assert not (tmp_path / "status.json").exists()


def test_input_error_is_recorded_and_exits_zero(tmp_path):
    def work():
        raise NoEmissionError("g.fits: no emission above 4 sigma")

    assert run_stage("prepare", "g", tmp_path, work, record_failure=True) == 0
    status = json.loads((tmp_path / "status.json").read_text())
    assert status == {
        "status": "failed",
        "stage": "prepare",
        "galaxy": "g",
        "error": "g.fits: no emission above 4 sigma",
    }


def test_fit_job_on_a_full_disk_exits_non_zero_without_a_failed_status(galaxy, tmp_path, monkeypatch):
    import kinms_core.galaxy

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "chain.h5"))

    monkeypatch.setattr(kinms_core.galaxy, "fit_prepared", full_disk)
    out = tmp_path / "fit"
    code = main(["fit", str(galaxy["prepared"]), "-o", str(out), "--record-failure", "--no-plots", "--no-progress"])
    assert code == 1
    assert not (out / "status.json").exists()


def test_likelihood_lets_bugs_through_and_makes_only_a_model_outside_the_cube_impossible(galaxy):
    from kinms_core.galaxy import load_fit_data

    fit_data: FitData = load_fit_data(galaxy["prepared"], "g")
    settings = load_settings(galaxy["settings"])
    parameters = settings.resolved(fit_data.guesses, fit_data.bounds)
    posterior = LogPosterior(fit_data, parameters, settings.spec, n_clouds=2048, seed=0)
    theta = posterior.guess
    assert np.isfinite(posterior(theta))

    def outside(*args, **kwargs):
        raise ModelOutsideCubeError("the model's emission falls entirely outside the cube")

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    posterior.chi2 = outside
    assert posterior(theta) == -np.inf
    posterior.chi2 = bug
    with pytest.raises(ValueError, match="broadcast"):
        posterior(theta)


# ------------------------------------------------------------------------- 4: names safe as paths and options
@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("-h,a.fits\n", "start with a letter or digit"),
        ("--help,a.fits\n", "start with a letter or digit"),
        (f"{'n' * 65},a.fits\n", "at most 64 characters"),
        ("NGC1,a.fits\nngc1,b.fits\n", "differ only in case"),
        ("Mocks,a.fits\n", "reserved"),
        ("a,-h.fits\n", "starts with '-'"),
        (f"a,{'c' * 300}.fits\n", "too long"),
    ],
)
def test_unsafe_names_and_paths_are_refused_before_any_job(tmp_path, rows, match):
    (tmp_path / "s.csv").write_text("galaxy,cube\n" + rows)
    with pytest.raises(SettingsError, match=match):
        check_sheet(read_sheet(tmp_path / "s.csv"), PARAMS)


# ------------------------------------------------------------------ 5: settings checked before anything runs
@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"fit": {"nwalkers": 8.0}}, r"settings key fit.nwalkers: 8.0 is not of type 'integer'"),
        ({"fit": {"max_steps": 100.0}}, r"settings key fit.max_steps"),
        ({"model": {"n_clouds": 10**10}}, r"settings key model.n_clouds: 10000000000 is greater than the maximum"),
        ({"parameters": {"inc": {"min": 80, "max": 10}}}, r"parameters.inc: min \(80\) must be below max \(10\)"),
        ({"parameters": {"inc": {"guess": 95, "max": 89}}}, r"parameters.inc.guess 95 lies outside its bounds"),
        ({"fit": {"nwalkers": 12}}, r"fit.nwalkers \(12\) must be at least twice the free parameters \(10\)"),
    ],
)
def test_settings_errors_are_found_when_the_settings_are_loaded(raw, match):
    with pytest.raises(SettingsError, match=match):
        load_settings(raw)


def test_each_galaxys_settings_are_checked_with_its_sheet_overrides(tmp_path):
    (tmp_path / "s.csv").write_text(
        "galaxy,cube,inc_guess,pa_min\ngood,a.fits,50,\nsteep,b.fits,95,\nodd,c.fits,,400\n"
    )
    sheet = read_sheet(tmp_path / "s.csv")
    with pytest.raises(SettingsError) as info:
        check_galaxy_settings(sheet, {"parameters": {"inc": {"max": 89}, "pa": {"max": 360}}})
    message = str(info.value)
    assert "galaxy 'steep': parameters.inc.guess 95 lies outside" in message
    assert "galaxy 'odd': parameters.pa: min (400) must be below max (360)" in message
    assert "'good'" not in message


# ------------------------------------------------------------------------------------- 6: atomic and tolerant
def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "status.json"
    write_json_atomic(path, {"status": "ok"})

    def killed(*args):
        raise KeyboardInterrupt  # what a kill between writing and renaming amounts to

    monkeypatch.setattr("kinms_core.safe_files.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(path, {"status": "failed", "error": "x" * 100000})
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left behind


def test_a_truncated_map_json_is_made_again_not_a_permanent_failure(galaxy, tmp_path):
    out = tmp_path / "fit"
    shutil.copytree(galaxy["fit"], out)
    (out / "summary.json").unlink()
    (out / "map.json").write_text('{"fingerprint": "ab')  # killed while writing (before writes were atomic)
    result = cli("fit", str(out / "prepared"), "--settings", str(galaxy["settings"]), "-o", str(out), "--no-plots")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "status.json").read_text())["status"] == "ok"
    assert read_json_object(out / "map.json", remedy="")["fingerprint"]


def _fake_summary() -> dict:
    parameters = {p: {"median": 1.0, "p16": 0.9, "p84": 1.1, "map": 1.0, "fixed": False} for p in PARAMS}
    return {"parameters": parameters, "chi2_reduced": 1.0, "n_detected": 10, "converged": True}


def test_one_unreadable_summary_fails_only_its_galaxy(tmp_path):
    results = tmp_path / "results"
    for galaxy, summary in (("a", json.dumps(_fake_summary())), ("b", '{"parameters": {"fl'), ("c", "[1, 2]")):
        write_status(results / galaxy / "prepare", "prepare", galaxy)
        write_status(results / galaxy / "fit", "fit", galaxy)
        (results / galaxy / "fit" / "summary.json").write_text(summary)
    (results / "d" / "prepare").mkdir(parents=True)
    (results / "d" / "prepare" / "status.json").write_text("")  # a stage killed before atomic writes
    (tmp_path / "sheet.csv").write_text("galaxy,cube\na,a.fits\nb,b.fits\nc,c.fits\nd,d.fits\n")
    frame = make_catalogue(tmp_path / "sheet.csv", results, tmp_path / "c.csv").set_index("galaxy")
    assert list(frame["status"]) == ["ok", "failed", "failed", "failed"]
    assert "summary.json is not valid JSON" in frame.loc["b", "error"] and "logs/fit/b.log" in frame.loc["b", "error"]
    assert "holds a JSON list, not an object" in frame.loc["c", "error"]
    assert frame.loc["d", "error"].startswith("prepare: ") and "logs/prepare/d.log" in frame.loc["d", "error"]


def test_catalogue_after_a_crash_is_made_from_what_exists(tmp_path):
    results = tmp_path / "results"
    write_status(results / "a" / "prepare", "prepare", "a")
    write_status(results / "a" / "fit", "fit", "a")
    (results / "a" / "fit" / "summary.json").write_text(json.dumps(_fake_summary()))
    write_status(results / "b" / "prepare", "prepare", "b")  # b's fit crashed: no fit status
    (tmp_path / "sheet.csv").write_text("galaxy,cube\na,a.fits\nb,b.fits\n")
    frame = make_catalogue_after_failure(tmp_path / "sheet.csv", results)
    assert frame is not None
    written = pd.read_csv(results / "catalogue.csv", keep_default_na=False).set_index("galaxy")
    assert list(written["status"]) == ["ok", "failed"]
    assert "crashed" in written.loc["b", "error"] and "logs/fit/b.log" in written.loc["b", "error"]
    assert (results / "catalogue.fits").exists()
    # out of date for the next run, which must redo b's fit and then the catalogue
    assert (results / "catalogue.csv").stat().st_mtime < (tmp_path / "sheet.csv").stat().st_mtime
    # once every galaxy has its statuses and the catalogue exists, a later failure elsewhere leaves it alone
    write_status(results / "b" / "fit", "fit", "b", "no emission")
    make_catalogue(tmp_path / "sheet.csv", results, results / "catalogue.csv")
    before = (results / "catalogue.csv").stat().st_mtime_ns
    assert make_catalogue_after_failure(tmp_path / "sheet.csv", results) is None
    assert (results / "catalogue.csv").stat().st_mtime_ns == before


# ------------------------------------------------------------------------------------ 7: garbage is not science
@pytest.mark.parametrize(
    ("guesses", "match"),
    [
        ({"flux": 2.45e30, "vsys": 1000.0}, "2.45e\\+30 Jy km/s"),
        ({"flux": 30.0, "vsys": float("nan")}, r"\['vsys'\] are not finite"),
        ({"flux": -3.0, "vsys": 1000.0}, "outside \\(0"),
        ({"flux": 30.0, "vsys": 4e5}, "faster than light"),
    ],
)
def test_absurd_first_guesses_are_refused(guesses, match):
    with pytest.raises(ImplausibleDataError, match=match):
        check_guesses(guesses, source="g.fits")


def test_reduced_chi_square_far_from_one_is_flagged(galaxy):
    assert chi2_is_extreme(1.3e61) and chi2_is_extreme(0.01) and chi2_is_extreme(float("nan"))
    assert not chi2_is_extreme(1.0) and not chi2_is_extreme(3.0)
    summary = json.loads((galaxy["fit"] / "summary.json").read_text())
    assert summary["flags"]["chi2_extreme"] is False


# ----------------------------------------------------------------------------- 8: one line, not a traceback
def test_output_folder_that_is_a_file_is_one_line(galaxy, tmp_path):
    existing = tmp_path / "taken"
    existing.write_text("not a folder")
    assert_one_line_error(cli("prepare", str(galaxy["cube"]), "-o", str(existing)), 2, "is an existing file")
    # the --record-failure handler crashed a second time trying to write its status there
    result = cli("prepare", str(galaxy["cube"]), "-o", str(existing), "--record-failure", "--galaxy", "g")
    assert_one_line_error(result, 2, "is an existing file")


def test_path_too_long_is_one_line(galaxy, tmp_path):
    result = cli("prepare", str(galaxy["cube"]), "-o", str(tmp_path / ("x" * 300)), "--record-failure")
    assert_one_line_error(result, 1, "File name too long")


def test_plot_of_a_corrupt_chain_is_one_line(galaxy, tmp_path):
    fit = tmp_path / "fit"
    shutil.copytree(galaxy["fit"], fit)
    (fit / "chain.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    result = cli("plot", str(fit), "--prepared", str(fit / "prepared"), "-o", str(tmp_path / "plots"))
    assert_one_line_error(result, 2, "chain.h5", "fit the galaxy again")


@pytest.mark.parametrize("name", ["prepare.json", "obspars.json"])
def test_json_that_is_not_an_object_is_one_line(galaxy, tmp_path, name):
    prepared = tmp_path / "prepared"
    shutil.copytree(galaxy["prepared"], prepared)
    (prepared / name).write_text("[1, 2, 3]")
    result = cli("fit", str(prepared), "--settings", str(galaxy["settings"]), "-o", str(tmp_path / "fit"))
    assert_one_line_error(result, 2, name, "not an object")


def test_a_bug_still_shows_its_traceback(galaxy, tmp_path, monkeypatch, caplog):
    import kinms_core.galaxy

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(kinms_core.galaxy, "fit_prepared", bug)
    with caplog.at_level(logging.ERROR):
        code = main(["fit", str(galaxy["prepared"]), "-o", str(tmp_path / "fit"), "--no-plots", "--no-progress"])
    assert code == 1
    bug_records = [r for r in caplog.records if "a bug in kinms-core" in r.getMessage()]
    assert bug_records and bug_records[0].exc_info[0] is ZeroDivisionError


def test_corrupt_status_is_an_input_error(tmp_path):
    from kinms_core.status import read_status

    (tmp_path / "status.json").write_text('"ok"')
    with pytest.raises(CorruptFileError, match="not an object"):
        read_status(tmp_path)
