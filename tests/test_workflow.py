"""The Snakemake workflow: dry-run DAGs of the demo and of bad sheets and configs, a user's config that inherits
nothing from the demo's, and a tiny real survey with bad cubes, a crashing job (the catalogue is still made), reruns
that do nothing and a changed row that reruns only its galaxy.

Each test works in a temporary folder with its own config (``--configfile``, ``--directory``) and the repository's
Snakefile (``-s``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
BIN = Path(sys.executable).parent

JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n?)*)", re.MULTILINE)


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, path_prefix: Path | None = None):
    """Run snakemake on the repository's Snakefile in ``workdir``; returns the CompletedProcess."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(str(p) for p in (path_prefix, BIN) if p) + os.pathsep + env.get("PATH", "")
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir)]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    result = subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=600, check=False, cwd=workdir
    )
    result.output = result.stdout + result.stderr  # Snakemake 9 logs to both
    return result


def planned_jobs(output: str) -> list[tuple[str, str]]:
    """``(rule, galaxy)`` of every job in a dry run's output (galaxy '' for survey-level jobs)."""
    jobs = []
    for match in JOB.finditer(output):
        wildcards = re.search(r"wildcards: .*?galaxy=([A-Za-z0-9_-]+)", match.group(2))
        jobs.append((match.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


def per_galaxy(jobs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The jobs of single galaxies."""
    return {job for job in jobs if job[1]}


@contextlib.contextmanager
def edited(path: Path, old: str, new: str):
    """Replace ``old`` by ``new`` in a file for the duration of the block, then restore its text and its times (so
    that the restored file is not newer than what was made from it)."""
    text, stat = path.read_text(), path.stat()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))
    try:
        yield
    finally:
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def demo_copy(tmp_path: Path) -> Path:
    """The demo's config folder copied into ``tmp_path`` (its paths are relative to the working directory)."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path / "config" / "config.yaml"


# ----------------------------------------------------------------------------------------------- dry runs
def test_demo_dry_run_plans_every_galaxy(tmp_path):
    configfile = demo_copy(tmp_path)
    result = snakemake(
        tmp_path,
        "-n",
        "-p",
        "--cores",
        "4",
        "--set-threads",
        "fit=3",
        "--workflow-profile",
        "none",
        configfile=configfile,
    )
    assert result.returncode == 0, result.output
    jobs = planned_jobs(result.output)
    galaxies = list(pd.read_csv(tmp_path / "config" / "galaxies.csv", comment="#")["galaxy"])
    assert len(galaxies) >= 8
    for rule in ("simulate", "prepare", "fit", "plots"):
        assert sorted(g for r, g in jobs if r == rule) == sorted(galaxies), rule
    for rule in ("fit_settings", "catalogue", "survey_plots", "provenance", "all"):
        assert [g for r, g in jobs if r == rule] == [""], rule
    # rules call the kinms-core CLI, one galaxy per job, with the fit's worker processes from its threads
    assert "kinms-core fit results/tutorial/prepare --settings results/survey/settings.yaml" in result.output
    assert "--threads 3" in result.output and "--record-failure" in result.output
    assert "results/benchmarks/fit/tutorial.tsv" in result.output


def test_default_profile_is_read(tmp_path):
    """profiles/default beside the Snakefile sets the run's defaults (keep-going, cores...)."""
    configfile = demo_copy(tmp_path)
    result = snakemake(tmp_path, "-n", configfile=configfile)
    assert result.returncode == 0, result.output
    assert "profiles/default" in result.output


def write_config(tmp_path: Path, sheet: str, **extra) -> Path:
    (tmp_path / "galaxies.csv").write_text(textwrap.dedent(sheet))
    config = {"galaxies": "galaxies.csv", "results": "results", **extra}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("sheet", "extra", "messages"),
    [
        ("galaxy,cube\nngc 1,a.fits\n", {}, ["galaxies.csv, row 1 (galaxy 'ngc 1')", "does not match"]),
        ("galaxy,cube,colour\na,a.fits,red\n", {}, ["row 1 (galaxy 'a')", "unknown key(s) ['colour']"]),
        ("galaxy,cube\na,a.fits\na,b.fits\n", {}, ["['a'] appear more than once"]),
        (
            "galaxy,cube,inc_guess\na,a.fits,steep\n",
            {},
            ["row 1 (galaxy 'a'): inc_guess: 'steep' is not valid", "a number or auto"],
        ),
        ("galaxy,cube\na,a.fits\n", {"colour": "red"}, ["Error validating the config", "unknown key(s) ['colour']"]),
        ("galaxy,cube\na,a.fits\n", {"fit": {"nwalkers": "many"}}, ["settings key fit.nwalkers"]),
        ("galaxy,cube\na,a.fits\n", {"parameters": {"incl": {"min": 5}}}, ["unknown parameter(s) ['incl']"]),
        ("galaxy,cube\na,a.fits\n", {"simulate": True}, ["simulate: true needs the mock table"]),
        # names that would read as options, or clash on case-insensitive file systems; a cube path that is an option
        ("galaxy,cube\n-h,a.fits\n", {}, ["row 1 (galaxy '-h')", "starting with a letter or digit"]),
        ("galaxy,cube\n--help,a.fits\n", {}, ["row 1 (galaxy '--help')", "does not match"]),
        ("galaxy,cube\nNGC1,a.fits\nngc1,b.fits\n", {}, ["['NGC1', 'ngc1'] differ only in case"]),
        ("galaxy,cube\na,-x.fits\n", {}, ["row 1 (galaxy 'a'): cube: '-x.fits' does not match", "./-name"]),
        # settings wrong before any data are seen: found now, not at fit time in every galaxy (the other such errors
        # are tested on kinms_core.settings in test_reliability.py)
        ("galaxy,cube\na,a.fits\n", {"fit": {"nwalkers": 8.0}}, ["settings key fit.nwalkers: 8.0 is not of type"]),
        (
            "galaxy,cube,inc_guess\na,a.fits,50\nb,b.fits,95\n",
            {"parameters": {"inc": {"max": 89}}},
            ["galaxy 'b': parameters.inc.guess 95 lies outside its bounds"],
        ),
    ],
)
def test_bad_sheet_or_config_stops_before_any_job_with_a_clear_message(tmp_path, sheet, extra, messages):
    configfile = write_config(tmp_path, sheet, **extra)
    result = snakemake(tmp_path, "-n", "--workflow-profile", "none", configfile=configfile)
    assert result.returncode != 0
    for message in messages:
        assert message in result.output, result.output


def test_config_with_only_galaxies_gets_library_defaults_not_the_demos(tmp_path):
    """A user's --configfile replaces the demo's config: what it does not say comes from the library."""
    from kinms_core.settings import FitOptions, load_settings

    shutil.copytree(REPO / "config", tmp_path / "config")  # the demo's config where the Snakefile looks for it
    (tmp_path / "galaxies.csv").write_text("galaxy,cube\nmine,mine.fits\n")
    configfile = tmp_path / "mine.yaml"
    configfile.write_text("galaxies: galaxies.csv\n")
    targets = ("results/survey/settings.yaml", "results/survey/provenance.json")
    # (targets last: the --configfile option takes every word up to the next option)
    result = snakemake(tmp_path, "--cores", "1", "--workflow-profile", "none", *targets, configfile=configfile)
    assert result.returncode == 0, result.output
    settings = load_settings(tmp_path / "results" / "survey" / "settings.yaml")
    assert settings.options == FitOptions() and settings.n_clouds is None  # None: chosen per galaxy
    config = json.loads((tmp_path / "results" / "survey" / "provenance.json").read_text())["config"]
    assert config == {
        "galaxies": "galaxies.csv",
        "mocks": None,
        "simulate": False,
        "results": "results",
        "model": {},
        "parameters": {},
        "fit": {},
        "families": {},
    }
    # and the demo, run without --configfile, still gets its own settings
    demo = snakemake(tmp_path, "-n", "--workflow-profile", "none")
    assert demo.returncode == 0, demo.output
    assert ("simulate", "tutorial") in planned_jobs(demo.output)


def test_missing_cube_is_planned_as_a_failure_not_a_stop(tmp_path):
    """A cube that does not exist does not stop the DAG: its prepare job records the failure."""
    configfile = write_config(tmp_path, "galaxy,cube\nghost,nowhere/ghost.fits\n")
    result = snakemake(tmp_path, "-n", "--workflow-profile", "none", configfile=configfile)
    assert result.returncode == 0, result.output
    assert ("prepare", "ghost") in planned_jobs(result.output)
    assert "ghost: cube nowhere/ghost.fits does not exist" in result.output


# ----------------------------------------------------------------------------------------------- a real survey
TINY_MOCKS = """\
galaxy,nx,ny,nv,cellsize,dv,bmaj,bmin,bpa,flux,pa,inc,vsys,sigma,scalerad,vflat,rturn,rms,n_clouds,format
alpha,32,32,16,1.0,30,4.0,4.0,0,30,250,55,1000,10,3,200,1.5,0.002,32768,vrad
beta,32,32,16,1.0,30,4.0,3.0,30,30,120,60,-300,10,3,180,1.5,0.002,32768,freq
"""

TINY_SHEET = """\
galaxy,cube
alpha,results/mocks/alpha.fits
beta,results/mocks/beta.fits
ghost,nowhere/ghost.fits
broken,broken.fits
sentinel,sentinel.fits
continuum,continuum.fits
selfie,results/selfie/prepare/cube.fits
"""
# what the catalogue says of each bad galaxy
TINY_FAILURES = {
    "ghost": "ghost.fits",
    "broken": "broken.fits",
    "sentinel": "blank values written as numbers",
    "continuum": "continuum left in the cube",
    "selfie": "would destroy the input",
}

TINY_CONFIG = {
    "galaxies": "galaxies.csv",
    "mocks": "mocks.csv",
    "simulate": True,
    "results": "results",
    "model": {"n_clouds": 4096},
    # 6 free parameters, so that 12 walkers are enough
    "parameters": {name: {"fixed": True} for name in ("flux", "xc", "yc", "sigma")},
    "fit": {"nwalkers": 12, "max_steps": 60, "check_every": 20, "optimiser_evaluations": 300, "seed": 3},
}

CRASH_SHIM = """\
#!/bin/sh
# kinms-core, except that fitting galaxy beta crashes as a bug would (an unexpected exception, exit 1)
case " $* " in
  *" fit "*"--galaxy beta "*) exec "{python}" -c "raise RuntimeError('simulated bug while fitting beta')" ;;
esac
exec "{real}" "$@"
"""


@pytest.fixture(scope="module")
def tiny_survey(tmp_path_factory):
    """Two tiny mocks; a missing cube, a broken file, a 1e30 sentinel, a continuum left in, a cube that its own
    prepare stage would overwrite; the first run has beta's fit crash."""
    from bad_inputs import GRID, galaxy_cube

    from kinms_core import write_cube

    work = tmp_path_factory.mktemp("survey")
    (work / "mocks.csv").write_text(TINY_MOCKS)
    (work / "galaxies.csv").write_text(TINY_SHEET)
    (work / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)  # a truncated header
    disc = galaxy_cube() + np.random.default_rng(1).normal(size=GRID.shape).astype(np.float32) * 1e-3
    write_cube(work / "continuum.fits", disc + 0.02, GRID)
    disc[8, 10, 12] = 1e30
    write_cube(work / "sentinel.fits", disc, GRID)
    disc[8, 10, 12] = 0.0
    selfie = write_cube(work / "results" / "selfie" / "prepare" / "cube.fits", disc, GRID).read_bytes()
    configfile = work / "config.yaml"
    configfile.write_text(yaml.safe_dump(TINY_CONFIG))
    shim = work / "shim"
    shim.mkdir()
    real = shutil.which("kinms-core", path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    assert real, "kinms-core is not installed (pip install -e .)"
    (shim / "kinms-core").write_text(CRASH_SHIM.format(python=sys.executable, real=real))
    (shim / "kinms-core").chmod(0o755)
    args = ("--cores", "2", "--keep-going", "--workflow-profile", "none")
    start = time.perf_counter()
    crashed = snakemake(work, *args, configfile=configfile, path_prefix=shim)
    # what the crashed run left (the second run rewrites beta's log)
    after_crash = {
        "beta_log": (work / "logs" / "fit" / "beta.log").read_text(),
        "files": {str(p.relative_to(work)) for p in (work / "results").rglob("*") if p.is_file()},
        "catalogue": pd.read_csv(work / "results" / "catalogue.csv", keep_default_na=False),
        "selfie": selfie,
    }
    finished = snakemake(work, *args, configfile=configfile)
    print(f"tiny survey: first run {time.perf_counter() - start:.0f}s for both runs")
    return {
        "work": work,
        "configfile": configfile,
        "crashed": crashed,
        "after_crash": after_crash,
        "finished": finished,
    }


@pytest.mark.slow
def test_crash_fails_only_that_galaxy_and_keep_going_finishes_the_rest(tiny_survey):
    crashed, after = tiny_survey["crashed"], tiny_survey["after_crash"]
    assert crashed.returncode != 0
    # the error names the job, the galaxy and its log, which holds the traceback
    assert "Error in rule fit" in crashed.output and "logs/fit/beta.log" in crashed.output
    assert "RuntimeError: simulated bug while fitting beta" in after["beta_log"]
    # the other galaxies were finished: alpha's plots, and the failures recorded for the bad cubes
    for galaxy in ("alpha", *TINY_FAILURES):
        for name in ("diagnostics.png", "corner.png", "traces.png", "rotation.png"):
            assert f"results/{galaxy}/plots/{name}" in after["files"]
    assert "results/beta/fit/status.json" not in after["files"]
    # the crash did not block the catalogue: made from what exists, beta a failed row that names its log
    cat = after["catalogue"].set_index("galaxy")
    assert list(cat.index) == ["alpha", "beta", *TINY_FAILURES]
    assert cat.loc["alpha", "status"] == "ok"
    assert cat.loc["beta", "status"] == "failed" and "logs/fit/beta.log" in cat.loc["beta", "error"]
    assert "crashed" in crashed.output or "some jobs failed" in crashed.output


@pytest.mark.slow
def test_tiny_survey_catalogue(tiny_survey):
    finished, work = tiny_survey["finished"], tiny_survey["work"]
    assert finished.returncode == 0, finished.output[-3000:]
    # the second run only redid beta (its fit had crashed) and the survey-level jobs, not alpha
    assert per_galaxy(planned_jobs(finished.output)) == {("fit", "beta"), ("plots", "beta")}
    cat = pd.read_csv(work / "results" / "catalogue.csv", keep_default_na=True)
    assert list(cat["galaxy"]) == ["alpha", "beta", *TINY_FAILURES]
    params = ["flux", "pa", "inc", "xc", "yc", "vsys", "sigma", "scalerad", "vflat", "rturn"]
    expected = ["galaxy", "status", "error"] + [c for p in params for c in (p, f"{p}_lo", f"{p}_hi")]
    expected += ["r_out", "v_out", "v_out_lo", "v_out_hi", "vsini_out", "vsini_out_lo", "vsini_out_hi"]
    expected += ["chi2_reduced", "n_detected", "rms", "acceptance", "tau_max", "converged", "runtime_s", "ra", "dec"]
    expected += [
        "model",
        "warp_radius",
        "n_free",
        "bic",
        "preferred_family",
        "preferred_weight",
        "preferred_family_bic",
        "errors",
        "noise_model",
    ]
    expected += ["error_inflation", "residual_excess"]
    expected += ["flags", "at_bound_parameters"]
    flags = ["not_converged", "at_bound", "guess_far", "mismatch", "chi2_extreme", "other_sources", "model_noise"]
    expected += [f"flag_{name}" for name in flags]
    expected += [f"{p}_true" for p in params]
    assert list(cat.columns) == expected
    ok = cat.set_index("galaxy").loc[["alpha", "beta"]]
    assert (ok["status"] == "ok").all() and ok["error"].isna().all()
    text = ("galaxy", "status", "error", "converged", "model", "preferred_family", "preferred_family_bic", "errors")
    text += ("noise_model", "flags")
    text += ("at_bound_parameters",)
    unwarped = ("warp_radius",)  # where a warp's pa and inc hold: empty without a warp
    numbers = ok[[c for c in expected if c not in text + unwarped and not c.startswith("flag_")]]
    assert np.isfinite(numbers.to_numpy(dtype=float)).all()
    assert ok["warp_radius"].isna().all()
    assert (ok["model"] == "default").all() and (ok["errors"] == "robust").all()
    assert ok["preferred_family"].notna().all() and ((ok["preferred_weight"] > 0) & (ok["preferred_weight"] <= 1)).all()
    assert ok["preferred_family_bic"].notna().all()
    assert ok[[f"flag_{name}" for name in flags]].isin([True, False]).all().all()
    # the parameters at a bound are named exactly where the flag is raised (an empty cell reads back as NaN)
    assert (ok["flag_at_bound"] == ok["at_bound_parameters"].notna()).all()
    # 60 steps are far too few: the flag says so, as the converged column does
    assert ok["flag_not_converged"].all() and not ok["converged"].any()
    assert ok.loc["alpha", "pa_true"] == 250 and ok.loc["beta", "inc_true"] == 60
    for galaxy in ("alpha", "beta"):
        assert abs(ok.loc[galaxy, "pa"] - ok.loc[galaxy, "pa_true"]) < 10
        assert abs(ok.loc[galaxy, "vsys"] - ok.loc[galaxy, "vsys_true"]) < 30
        assert ok.loc[galaxy, "pa_lo"] <= ok.loc[galaxy, "pa"] <= ok.loc[galaxy, "pa_hi"]
    failed = cat.set_index("galaxy").loc[list(TINY_FAILURES)]
    assert (failed["status"] == "failed").all()
    assert failed["pa"].isna().all()
    for galaxy, words in TINY_FAILURES.items():
        assert failed.loc[galaxy, "error"].startswith("prepare: "), galaxy
        assert words in failed.loc[galaxy, "error"], (galaxy, failed.loc[galaxy, "error"])
    # the cube that its prepare stage would have overwritten is intact
    assert (work / "results" / "selfie" / "prepare" / "cube.fits").read_bytes() == tiny_survey["after_crash"]["selfie"]
    for name in ("catalogue.fits", "survey/recovery.png", "survey/pulls.png", "survey/distributions.png"):
        assert (work / "results" / name).exists(), name
    provenance = (work / "results" / "survey" / "provenance.json").read_text()
    assert '"kinms_core"' in provenance and '"max_steps": 60' in provenance and "ghost.fits" in provenance
    for stage in ("prepare", "fit"):
        assert (work / "results" / "benchmarks" / stage / "alpha.tsv").exists()


@pytest.mark.slow
def test_finished_survey_rerun_does_nothing(tiny_survey):
    assert tiny_survey["finished"].returncode == 0
    result = snakemake(tiny_survey["work"], "-n", "--workflow-profile", "none", configfile=tiny_survey["configfile"])
    assert result.returncode == 0, result.output
    assert "Nothing to be done" in result.output
    assert planned_jobs(result.output) == []


@pytest.mark.slow
def test_changed_sheet_row_reruns_only_that_galaxy(tiny_survey):
    work, configfile = tiny_survey["work"], tiny_survey["configfile"]
    assert tiny_survey["finished"].returncode == 0
    # a per-galaxy override for beta only: the file changes, alpha's row does not
    with edited(work / "galaxies.csv", "beta,results/mocks/beta.fits\n", "beta,results/mocks/beta.fits,58\n"):
        sheet = work / "galaxies.csv"
        sheet.write_text(sheet.read_text().replace("galaxy,cube\n", "galaxy,cube,inc_guess\n"))
        result = snakemake(work, "-n", "-p", "--workflow-profile", "none", configfile=configfile)
        assert result.returncode == 0, result.output
        jobs = planned_jobs(result.output)
        assert per_galaxy(jobs) == {("fit", "beta"), ("plots", "beta")}, jobs
        assert {r for r, g in jobs if not g} <= {"catalogue", "survey_plots", "provenance", "all"}
        assert "--override inc_guess=58" in result.output


@pytest.mark.slow
def test_changed_mock_row_remakes_only_that_mock(tiny_survey):
    work, configfile = tiny_survey["work"], tiny_survey["configfile"]
    assert tiny_survey["finished"].returncode == 0
    with edited(
        work / "mocks.csv", "alpha,32,32,16,1.0,30,4.0,4.0,0,30,250,", "alpha,32,32,16,1.0,30,4.0,4.0,0,30,240,"
    ):
        result = snakemake(work, "-n", "--workflow-profile", "none", configfile=configfile)
        assert result.returncode == 0, result.output
        jobs = planned_jobs(result.output)
        assert per_galaxy(jobs) == {(r, "alpha") for r in ("simulate", "prepare", "fit", "plots")}, jobs
    # with the table as it was, nothing is left to do
    result = snakemake(work, "-n", "--workflow-profile", "none", configfile=configfile)
    assert "Nothing to be done" in result.output
