"""Survey library parts: mock cubes (kinms_core.simulate), the sheet helpers (kinms_core.survey) and the catalogue."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from kinms_core.catalogue import build_catalogue, collect_entry, make_catalogue, write_catalogue
from kinms_core.ingest import read_cube
from kinms_core.noise import estimate_rms
from kinms_core.obspars import ObsPars
from kinms_core.parametric import GalaxyModel, ModelSpec
from kinms_core.quality import FLAGS
from kinms_core.simulate import (
    C_KMS,
    beam_correlated_noise,
    mock_obspars,
    read_mock_table,
    simulate_cube,
    simulate_survey_row,
)
from kinms_core.status import write_status
from kinms_core.survey import (
    check_sheet,
    cube_arguments,
    galaxy_overrides,
    galaxy_truths,
    read_sheet,
    sheet_row,
)

PARAMS = ("flux", "pa", "inc", "xc", "yc", "vsys", "sigma", "scalerad", "vflat", "rturn")

ROW = {
    "galaxy": "g1",
    "nx": 48,
    "ny": 40,
    "nv": 20,
    "cellsize": 1.0,
    "dv": 20.0,
    "bmaj": 4.0,
    "bmin": 3.0,
    "bpa": 30.0,
    "flux": 30.0,
    "pa": 250.0,
    "inc": 55.0,
    "xc": 2.0,
    "yc": -1.0,
    "vsys": 1500.0,
    "sigma": 10.0,
    "scalerad": 4.0,
    "vflat": 180.0,
    "rturn": 2.0,
    "rms": 1e-3,
    "n_clouds": 16384,
}


# ------------------------------------------------------------------------------------------------ simulate
@pytest.mark.parametrize("fmt", ["vrad", "freq", "stokes4d", "freq_stokes4d"])
def test_every_format_reads_back_to_the_same_cube(tmp_path, fmt):
    """The four formats hold the same data on the same radio-velocity grid once read by the ingestion."""
    plain = read_cube(simulate_cube({**ROW, "format": "vrad"}, tmp_path / "plain.fits", seed=4))
    cube = read_cube(simulate_cube({**ROW, "format": fmt}, tmp_path / f"{fmt}.fits", seed=4))
    assert cube.data.shape == (20, 40, 48)
    np.testing.assert_allclose(cube.obspars.velocities, plain.obspars.velocities, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cube.data, plain.data)
    assert cube.obspars.beam == pytest.approx((4.0, 3.0, 30.0))
    # vsys is mid-band: at the central channel coordinate nv / 2
    assert cube.obspars.velocities[10] == pytest.approx(1500.0)


def test_frequency_axis_is_radio_convention_descending(tmp_path):
    path = simulate_cube({**ROW, "format": "freq", "restfreq": 230.538e9}, tmp_path / "f.fits", seed=1)
    header = fits.getheader(path)
    assert header["CTYPE3"] == "FREQ" and header["CDELT3"] < 0
    assert header["RESTFRQ"] == 230.538e9
    v0 = 1500.0 - 20.0 * 10  # velocity of channel 0
    assert header["CRVAL3"] == pytest.approx(230.538e9 * (1 - v0 / C_KMS), rel=1e-12)
    assert header["CDELT3"] == pytest.approx(-230.538e9 * 20.0 / C_KMS, rel=1e-12)


def test_stokes_cube_is_four_dimensional(tmp_path):
    path = simulate_cube({**ROW, "format": "stokes4d"}, tmp_path / "s.fits", seed=1)
    with fits.open(path) as hdul:
        assert hdul[0].data.shape == (1, 20, 40, 48)
        assert hdul[0].header["CTYPE4"] == "STOKES"


def test_same_seed_same_file_other_seed_other_noise(tmp_path):
    a = fits.getdata(simulate_cube(ROW, tmp_path / "a.fits", seed=7))
    b = fits.getdata(simulate_cube(ROW, tmp_path / "b.fits", seed=7))
    c = fits.getdata(simulate_cube(ROW, tmp_path / "c.fits", seed=8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mock_matches_the_fit_model_at_the_true_parameters(tmp_path):
    """The mock is the fit's parametric model at the true values (xc, yc from the reference pixel, absolute vsys)."""
    row = {**ROW, "rms": 0.0, "n_clouds": 2**17, "nx": 47}  # an odd axis too
    cube = read_cube(simulate_cube(row, tmp_path / "m.fits", seed=3))
    model = GalaxyModel(cube.obspars, ModelSpec(), n_clouds=2**17, seed=11).cube({p: row[p] for p in PARAMS})
    assert np.abs(cube.data - model).max() < 0.06 * model.max()
    assert abs(cube.data.sum() - model.sum()) < 1e-3 * model.sum()


def test_correlated_noise_has_the_target_rms_and_the_beam_shape():
    op = ObsPars(nx=96, ny=96, nv=30, cellsize=1.0, dv=10.0, beam=(6.0, 3.0, 0.0))
    noise = beam_correlated_noise(op, 2e-3, np.random.default_rng(0))
    assert noise.std() == pytest.approx(2e-3, rel=0.03)
    # the beam's major axis runs north-south (bpa 0): neighbours along y are more alike than along x
    corr_y = np.mean(noise * np.roll(noise, 2, axis=1)) / noise.var()
    corr_x = np.mean(noise * np.roll(noise, 2, axis=2)) / noise.var()
    # autocorrelation of the beam: exp(-4 ln2 d^2 / fwhm^2)
    assert corr_y == pytest.approx(math.exp(-4 * math.log(2) * 4 / 36), abs=0.05)
    assert corr_x == pytest.approx(math.exp(-4 * math.log(2) * 4 / 9), abs=0.05)
    # and channels are independent
    assert abs(np.mean(noise * np.roll(noise, 1, axis=0)) / noise.var()) < 0.03


def test_noise_level_is_what_the_row_asks(tmp_path):
    cube = read_cube(simulate_cube({**ROW, "nx": 64, "ny": 64, "rms": 2e-3}, tmp_path / "n.fits", seed=2))
    assert estimate_rms(cube.data) == pytest.approx(2e-3, rel=0.1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"colour": "red"}, "unknown column"),
        ({"inc": None}, r"missing value.*inc"),
        ({"nx": 10.5}, "nx must be a positive integer"),
        ({"format": "casa"}, "format 'casa' is unknown"),
        ({"inc": 95}, "inc must lie in"),
        ({"dv": "fast"}, "dv must be a number"),
    ],
)
def test_bad_mock_rows_name_the_galaxy_and_column(tmp_path, change, match):
    with pytest.raises(ValueError, match=match) as info:
        simulate_cube({**ROW, **change}, tmp_path / "x.fits", seed=0)
    assert "g1" in str(info.value)


def test_reference_pixel_and_velocity_start_can_be_given():
    op = mock_obspars({**ROW, "x_ref": 10.0, "y_ref": 12.0, "v_start": 1000.0})
    assert op.reference_pixel == (10.0, 12.0)
    assert op.velocity_start == 1000.0
    op = mock_obspars(ROW)
    assert op.reference_pixel == op.centre_pixel
    assert op.centre_velocity == pytest.approx(1500.0)


def test_survey_row_from_a_table(tmp_path):
    table = tmp_path / "mocks.csv"
    pd.DataFrame([ROW, {**ROW, "galaxy": "g2", "pa": 100.0}]).to_csv(table, index=False)
    with open(table, "r+") as f:  # comment lines are allowed
        text = f.read()
        f.seek(0)
        f.write("# a comment\n" + text)
    assert list(read_mock_table(table)["galaxy"]) == ["g1", "g2"]
    a = simulate_survey_row(table, "g1", tmp_path / "g1.fits")
    b = simulate_survey_row(table, "g2", tmp_path / "g2.fits")
    # different galaxies get different noise (a seed from each name)
    assert not np.array_equal(fits.getdata(a), fits.getdata(b))
    with pytest.raises(ValueError, match="'g3' is not in the mock table"):
        simulate_survey_row(table, "g3", tmp_path / "g3.fits")
    pd.DataFrame([ROW, ROW]).to_csv(table, index=False)
    with pytest.raises(ValueError, match="more than once"):
        read_mock_table(table)


# ------------------------------------------------------------------------------------------------ sheet
def write_sheet(path, text):
    path.write_text(text)
    return read_sheet(path)


def test_velocity_convention_column_becomes_the_prepare_option(tmp_path):
    import jsonschema
    import yaml

    sheet = write_sheet(tmp_path / "s.csv", "galaxy,cube,velocity_convention\na,a.fits,radio\nb,b.fits,\n")
    check_sheet(sheet, PARAMS)
    assert cube_arguments(sheet_row(sheet, "a")) == ["--velocity-convention", "radio"]
    assert cube_arguments(sheet_row(sheet, "b")) == []
    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/sheet.schema.yaml").read_text())
    jsonschema.validate(sheet_row(sheet, "a"), schema)
    with pytest.raises(jsonschema.ValidationError, match="'sideways' is not one of"):
        jsonschema.validate({**sheet_row(sheet, "a"), "velocity_convention": "sideways"}, schema)


def test_sheet_cells_become_numbers_words_and_command_options(tmp_path):
    sheet = write_sheet(
        tmp_path / "s.csv",
        "# comment\ngalaxy,cube,restfreq,bmaj,inc_guess,flux_fixed,vsys_min,pa_true\n"
        "a, a.fits,230.538e9,4,50,true,auto,270\n"
        "b,b.fits,,,,,,\n",
    )
    check_sheet(sheet, PARAMS)
    a, b = sheet_row(sheet, "a"), sheet_row(sheet, "b")
    assert a["cube"] == "a.fits"
    assert cube_arguments(a) == ["--restfreq", "230538000000", "--beam", "4", "4", "0"]
    assert cube_arguments(b) == []
    assert galaxy_overrides(a) == {"inc_guess": "50", "flux_fixed": "true", "vsys_min": "auto"}
    assert galaxy_overrides(b) == {}
    assert galaxy_truths(a, None, PARAMS) == {"pa": 270.0}
    # the mock table gives the rest; the sheet's _true wins
    assert galaxy_truths(a, ROW, PARAMS)["pa"] == 270.0
    assert galaxy_truths(b, ROW, PARAMS)["inc"] == 55.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("galaxy,cube\na,a.fits\na,b.fits\n", r"\['a'\] appear more than once"),
        ("galaxy,cube\nmocks,a.fits\n", "reserved"),
        ("galaxy,cube,colour\na,a.fits,red\n", "unknown column 'colour'"),
        ("galaxy,cube,ring_radius_guess\na,a.fits,3\n", "does not have"),
        ("galaxy,cube\nbad name,a.fits\n", "letters, digits"),
    ],
)
def test_bad_sheets_say_what_to_change(tmp_path, text, match):
    sheet = write_sheet(tmp_path / "s.csv", text)
    with pytest.raises(ValueError, match=match):
        check_sheet(sheet, PARAMS)


def test_sheet_without_cube_column(tmp_path):
    (tmp_path / "s.csv").write_text("galaxy\na\n")
    with pytest.raises(ValueError, match="lacks the column"):
        read_sheet(tmp_path / "s.csv")


# ------------------------------------------------------------------------------------------------ catalogue
def fake_summary(galaxy: str, pa: float = 269.0) -> dict:
    parameters = {p: {"median": 1.0, "p16": 0.9, "p84": 1.1, "map": 1.0, "fixed": False} for p in PARAMS}
    parameters["pa"] = {"median": pa, "p16": pa - 1, "p84": pa + 1, "map": pa, "fixed": False}
    parameters["sigma"] = {"median": 0.0, "p16": 0.0, "p84": 0.0, "map": 0.0, "fixed": True}
    return {
        "galaxy": galaxy,
        "parameters": parameters,
        "chi2_reduced": 1.01,
        "n_detected": 1234,
        "rms": 1e-3,
        "acceptance": 0.3,
        "tau_max": 20.0,
        "converged": True,
        "runtime_s": 12.5,
        "ra": 150.0,
        "dec": 2.0,
        "model": "data",
        "n_free": 9,
        "bic": 1234.5,
        "errors": "robust",
        "noise_model": "map",
        "likelihood": {"inflation": 4.0, "residual_variance": 3.0, "noise_variance": 1.5},
        "flags": {"not_converged": False, "mismatch": True, "other_sources": True},
        "outer_rotation": {
            "radius": 12.0,
            "v": {"median": 150.0, "p16": 140.0, "p84": 165.0},
            "vsini": {"median": 100.0, "p16": 96.0, "p84": 104.0},
        },
    }


def test_catalogue_rows_ok_and_failed(tmp_path):
    entries = [
        {"galaxy": "a", "status": "ok", "error": "", "summary": fake_summary("a")},
        {"galaxy": "b", "status": "failed", "error": "prepare: no beam", "summary": None},
        {"galaxy": "c", "status": "ok", "error": "", "summary": fake_summary("c", pa=-5.0)},
    ]
    df = build_catalogue(entries, params=PARAMS, truths={"a": {"pa": 270.0, "inc": 45.0}})
    expected = ["galaxy", "status", "error"]
    for p in PARAMS:
        expected += [p, f"{p}_lo", f"{p}_hi"]
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
        "error_inflation",
        "residual_excess",
        "flags",
        "at_bound_parameters",
    ]
    expected += [f"flag_{name}" for name in FLAGS]
    expected += ["pa_true", "inc_true"]
    assert list(df.columns) == expected
    a, b, c = (df.iloc[i] for i in range(3))
    assert (a["status"], a["error"], a["pa"], a["pa_lo"], a["pa_hi"]) == ("ok", "", 269.0, 268.0, 270.0)
    assert a["sigma"] == 0.0 and a["n_detected"] == 1234 and bool(a["converged"])
    assert b["status"] == "failed" and b["error"] == "prepare: no beam"
    assert np.isnan(b["pa"]) and pd.isna(b["n_detected"]) and pd.isna(b["converged"])
    assert np.isnan(c["pa_true"]) and a["inc_true"] == 45.0
    # the rotation at the emission's radius; none for a failed fit or one that has no rotation velocity
    assert (a["r_out"], a["v_out"], a["v_out_lo"], a["v_out_hi"]) == (12.0, 150.0, 140.0, 165.0)
    assert (a["vsini_out"], a["vsini_out_lo"], a["vsini_out_hi"]) == (100.0, 96.0, 104.0)
    assert np.isnan(b["v_out"]) and np.isnan(b["r_out"])
    no_curve = fake_summary("i") | {"outer_rotation": None}
    row = build_catalogue([{"galaxy": "i", "status": "ok", "error": "", "summary": no_curve}], params=PARAMS).iloc[0]
    assert np.isnan(row["vsini_out_hi"]) and row["pa"] == 269.0
    # how the errors and noise were modelled, and the raised flags in FLAGS order
    assert (a["errors"], a["noise_model"], a["error_inflation"], a["residual_excess"]) == ("robust", "map", 2.0, 2.0)
    assert (a["model"], a["n_free"], a["bic"]) == ("data", 9, 1234.5)
    assert np.isnan(a["warp_radius"])  # no warp, no pivot
    warped = fake_summary("d") | {"spec": {"warp": "rings", "warp_radii": [4.0, 8.0, 12.0]}}
    linear = fake_summary("e") | {"spec": {"warp": "linear", "warp_radius": 6.0}}
    rows = build_catalogue(
        [{"galaxy": g, "status": "ok", "error": "", "summary": s} for g, s in (("d", warped), ("e", linear))],
        params=PARAMS,
    )
    assert list(rows["warp_radius"]) == [4.0, 6.0]  # where pa and inc hold: the rings' start, the linear pivot
    # the model the family errors' search prefers, named by what it adds to the fit's (the fit's: its model)
    assert (a["preferred_family"], np.isnan(a["preferred_weight"])) == ("", True)  # no family errors
    searched = fake_summary("f")
    searched["likelihood"] = searched["likelihood"] | {"families": {"weights": {"fit": 0.3, "radial": 0.7}}}
    kept = fake_summary("g")
    kept["likelihood"] = kept["likelihood"] | {"families": {"weights": {"fit": 0.9, "radial": 0.1}}}
    rows = build_catalogue(
        [{"galaxy": g, "status": "ok", "error": "", "summary": s} for g, s in (("f", searched), ("g", kept))],
        params=PARAMS,
    )
    assert list(rows["preferred_family"]) == ["radial", "data"] and list(rows["preferred_weight"]) == [0.7, 0.9]
    assert list(rows["preferred_family_bic"].fillna("")) == ["", ""]  # weights alone: no criteria to rank
    # by BIC: AIC + k (ln N_eff - 2); with N_eff = e^5 a parameter costs 3 more than by AIC
    ranked = fake_summary("j") | {"n_effective": math.exp(5.0)}
    families = {"weights": {"fit": 0.27, "radial": 0.73}, "aic": {"fit": 100.0, "radial": 98.0}}
    ranked["likelihood"] = ranked["likelihood"] | {"families": families | {"n_parameters": {"fit": 10, "radial": 11}}}
    row = build_catalogue([{"galaxy": "j", "status": "ok", "error": "", "summary": ranked}], params=PARAMS).iloc[0]
    assert (row["preferred_family"], row["preferred_family_bic"]) == ("radial", "data")  # BIC 131 against 130
    assert a["flags"] == "mismatch;other_sources" and a["flag_mismatch"] and not a["flag_not_converged"]
    assert a["at_bound_parameters"] == ""  # no free parameter with bounds
    bounded = fake_summary("h")
    for name, (low, high) in {"inc": (5.0, 89.0), "vflat": (0.0, 1000.0), "pa": (0.0, 360.0)}.items():
        bounded["parameters"][name] |= {"min": low, "max": high}
    bounded["parameters"]["inc"] |= {"median": 88.9, "p16": 88.5, "p84": 89.0}  # piled at its upper bound
    bounded["parameters"]["vflat"] |= {"median": 2.0, "p16": 0.0, "p84": 5.0}  # its interval reaches 0
    row = build_catalogue([{"galaxy": "h", "status": "ok", "error": "", "summary": bounded}], params=PARAMS).iloc[0]
    assert row["at_bound_parameters"] == "inc;vflat"
    assert pd.isna(b["flag_mismatch"]) and pd.isna(b["errors"])
    # PA: into [0, 360) without a truth, with its percentiles
    assert (c["pa"], c["pa_lo"], c["pa_hi"]) == (355.0, 354.0, 356.0)


def test_pa_is_reported_nearest_its_true_value():
    entries = [{"galaxy": "a", "status": "ok", "error": "", "summary": fake_summary("a", pa=359.0)}]
    df = build_catalogue(entries, params=PARAMS, truths={"a": {"pa": 1.0}})
    assert (df["pa"][0], df["pa_lo"][0], df["pa_hi"][0]) == (-1.0, -2.0, 0.0)


def test_catalogue_files_have_units_and_empty_failed_cells(tmp_path):
    entries = [
        {"galaxy": "a", "status": "ok", "error": "", "summary": fake_summary("a")},
        {"galaxy": "b", "status": "failed", "error": "fit: diverged", "summary": None},
    ]
    df = build_catalogue(entries, params=PARAMS, truths={"a": {"pa": 270.0}})
    csv, fits_path = write_catalogue(df, tmp_path / "c.csv", tmp_path / "c.fits")
    back = pd.read_csv(csv)
    assert list(back.columns) == list(df.columns)
    assert back["n_detected"][0] == 1234 and pd.isna(back["n_detected"][1]) and pd.isna(back["pa"][1])
    table = Table.read(fits_path)
    assert list(table["flag_mismatch"]) == [True, False] and table["flags"][0] == "mismatch;other_sources"
    assert str(table["pa"].unit) == "deg" and str(table["flux"].unit) == "Jy km / s"
    assert str(table["vsys_lo"].unit) == "km / s" and str(table["scalerad"].unit) == "arcsec"
    assert str(table["rms"].unit) == "Jy / beam" and str(table["ra"].unit) == "deg"
    assert str(table["pa_true"].unit) == "deg"
    assert str(table["r_out"].unit) == "arcsec" and str(table["vsini_out_hi"].unit) == "km / s"
    assert table["galaxy"][1] == "b" and table["error"][1] == "fit: diverged"
    assert table["n_detected"][0] == 1234 and table["n_detected"].mask[1]
    assert bool(table["converged"][0]) and not table["converged"][1]
    assert np.ma.is_masked(table["pa"][1])  # astropy reads NaN as masked


def test_collect_entry_reads_the_stage_folders(tmp_path):
    write_status(tmp_path / "a" / "prepare", "prepare", "a")
    write_status(tmp_path / "a" / "fit", "fit", "a")
    (tmp_path / "a" / "fit" / "summary.json").write_text(json.dumps(fake_summary("a")))
    write_status(tmp_path / "b" / "prepare", "prepare", "b", "b.fits: no such file")
    write_status(tmp_path / "b" / "fit", "fit", "b", "b.fits: no such file")
    assert collect_entry("a", tmp_path)["status"] == "ok"
    b = collect_entry("b", tmp_path)
    assert (b["status"], b["error"]) == ("failed", "prepare: b.fits: no such file")
    c = collect_entry("c", tmp_path)
    assert c["status"] == "failed" and "did not run" in c["error"]


def test_make_catalogue_from_sheet_and_mock_table(tmp_path):
    results = tmp_path / "results"
    write_status(results / "g1" / "prepare", "prepare", "g1")
    write_status(results / "g1" / "fit", "fit", "g1")
    (results / "g1" / "fit" / "summary.json").write_text(json.dumps(fake_summary("g1")))
    (tmp_path / "sheet.csv").write_text("galaxy,cube,flux_true\ng1,g1.fits,\ng2,g2.fits,12\n")
    pd.DataFrame([ROW]).to_csv(tmp_path / "mocks.csv", index=False)
    df = make_catalogue(
        tmp_path / "sheet.csv", results, tmp_path / "c.csv", tmp_path / "c.fits", mocks=tmp_path / "mocks.csv"
    )
    assert list(df["galaxy"]) == ["g1", "g2"]
    assert list(df["status"]) == ["ok", "failed"]
    assert df["inc_true"][0] == 55.0 and df["flux_true"][1] == 12.0 and np.isnan(df["inc_true"][1])
    assert (tmp_path / "c.fits").exists()


def test_catalogue_has_a_row_per_galaxy_and_model_family(tmp_path):
    results = tmp_path / "results"
    for folder in ("prepare", "fit", "families/radial"):
        write_status(results / "g1" / folder, folder.split("/")[0], "g1")
    (results / "g1" / "fit" / "summary.json").write_text(json.dumps(fake_summary("g1")))
    radial = fake_summary("g1")
    radial["parameters"]["vrad"] = {"median": -12.0, "p16": -14.0, "p84": -10.0, "map": -12.0, "fixed": False}
    radial |= {"model": "radial", "bic": 1200.0}
    (results / "g1" / "families" / "radial" / "summary.json").write_text(json.dumps(radial))
    (tmp_path / "sheet.csv").write_text("galaxy,cube\ng1,g1.fits\ng2,g2.fits\n")
    settings = {"radial": {"model": {"motions": "radial"}}}
    df = make_catalogue(tmp_path / "sheet.csv", results, tmp_path / "c.csv", families=settings)
    assert list(zip(df["galaxy"], df["model"], df["status"], strict=True)) == [
        ("g1", "default", "ok"),  # the survey's model, named by its families
        ("g1", "radial", "ok"),
        ("g2", "default", "failed"),
        ("g2", "radial", "failed"),
    ]
    assert df["vrad"][1] == -12.0 and np.isnan(df["vrad"][0])  # the family's parameter is a column of its own
    assert df["bic"][1] == 1200.0 and "g2/prepare/status.json" in df["error"][3]
    # a family whose fit is missing says where it looked
    (results / "g1" / "families" / "radial" / "status.json").unlink()
    df = make_catalogue(tmp_path / "sheet.csv", results, tmp_path / "c.csv", families=settings)
    assert "g1/families/radial/status.json" in df["error"][1] and "logs/families/radial/g1.log" in df["error"][1]


def test_quality_flags_say_what_to_look_at():
    from kinms_core.quality import fit_flags

    def entry(median, p16, p84, low, high, guess):
        return {"median": median, "p16": p16, "p84": p84, "min": low, "max": high, "guess": guess, "fixed": False}

    wide_but_clear = {"rturn": entry(3.5, 2.3, 4.7, 0.01, 320.0, 2.0), "pa": entry(100, 99, 101, -80, 280, 101)}
    flags = fit_flags(wide_but_clear, converged=True, chi2_reduced=1.1, channel_width=20.0)
    assert not any(flags.values())
    piled_up = {"inc": entry(88.8, 88.5, 89.0, 5.0, 89.0, 80.0)}
    assert fit_flags(piled_up, converged=True, chi2_reduced=1.1, channel_width=20.0)["at_bound"]
    far = {"pa": entry(150, 149, 151, -80, 280, 100)}  # 50 deg and 50 sigma from its first guess
    assert fit_flags(far, converged=True, chi2_reduced=1.1, channel_width=20.0)["guess_far"]
    flags = fit_flags(
        {}, converged=False, chi2_reduced=40.0, channel_width=20.0, residual_variance=3.0, noise_variance=1.0
    )
    assert flags["not_converged"] and flags["chi2_extreme"] and flags["mismatch"]
