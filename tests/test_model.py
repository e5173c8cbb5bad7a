"""Behaviour of the cube model: conventions, normalisation, convolution, determinism, errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from conftest import tutorial_params
from scipy.signal import convolve2d

from kinms_core import CubeModel, ObsPars, model_cube, write_cube
from kinms_core.beam import BeamConvolver, fast_fft_size, gaussian_psf
from kinms_core.errors import CorruptFileError
from kinms_core.obspars import Provenance

SMALL = 2**13


def centroid(image: np.ndarray) -> tuple[float, float]:
    """Flux-weighted (x, y) of a 2-D image."""
    y, x = np.indices(image.shape)
    return float((image * x).sum() / image.sum()), float((image * y).sum() / image.sum())


def test_same_seed_is_bit_identical_and_other_seed_differs(tutorial_obspars):
    a = model_cube(tutorial_obspars, seed=3, **tutorial_params())
    b = model_cube(tutorial_obspars, seed=3, **tutorial_params())
    c = model_cube(tutorial_obspars, seed=4, **tutorial_params())
    assert a.dtype == np.float64 and a.shape == (25, 64, 64)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_reused_model_gives_the_same_cube_as_one_shot(tutorial_obspars):
    model = CubeModel(tutorial_obspars, seed=1)
    first = model.cube(**tutorial_params(inc=60.0))
    model.cube(**tutorial_params(inc=30.0, pa=10.0))
    assert np.array_equal(first, model.cube(**tutorial_params(inc=60.0)))
    assert np.array_equal(first, model_cube(tutorial_obspars, seed=1, **tutorial_params(inc=60.0)))


@pytest.mark.parametrize("clean", [False, True])
def test_flux_normalisation_in_jy_per_beam(tutorial_obspars, clean):
    model = CubeModel(tutorial_obspars, n_clouds=SMALL)
    cube = model.cube(**tutorial_params(int_flux=12.5), clean=clean)
    beam_sum = 1.0 if clean else model.psf_sum
    assert cube.sum() * tutorial_obspars.dv / beam_sum == pytest.approx(12.5, rel=1e-12)
    if not clean:
        # The point-sampled PSF sums to the analytic beam area in pixels.
        assert model.psf_sum == pytest.approx(tutorial_obspars.beam_area_pixels, rel=1e-3)


@pytest.mark.parametrize(("pa", "direction"), [(0.0, (0, 1)), (90.0, (-1, 0)), (180.0, (0, -1)), (270.0, (1, 0))])
def test_receding_side_points_along_position_angle(tutorial_obspars, pa, direction):
    """KinMS's convention: PA (north through east) gives the receding half; +y is north, -x is east."""
    cube = model_cube(tutorial_obspars, n_clouds=SMALL, **tutorial_params(inc=60.0, pa=pa))
    nv = tutorial_obspars.nv
    red = cube[nv // 2 + 2 :].sum(axis=0)
    blue = cube[: nv // 2 - 1].sum(axis=0)
    (rx, ry), (bx, by) = centroid(red), centroid(blue)
    assert np.sign(round(rx - bx, 1)) == direction[0]
    assert np.sign(round(ry - by, 1)) == direction[1]


@pytest.mark.parametrize("shape", [(25, 64, 64), (21, 63, 63), (20, 48, 64), (17, 33, 50)])
def test_centre_lies_at_half_the_size_for_odd_and_even_sizes(shape):
    nv, ny, nx = shape
    op = ObsPars(nx=nx, ny=ny, nv=nv, cellsize=1.0, dv=20.0, beam=(3.0, 3.0, 0.0))
    compact = np.exp(-tutorial_params()["sb_rad"] / 1.5)  # no flux near the edges, where truncation would bias
    cube = model_cube(op, **tutorial_params(inc=0.0, sb_prof=compact, vel_prof=np.zeros_like(compact)))
    assert cube.shape == shape
    cx, cy = centroid(cube.sum(axis=0))
    assert (cx, cy) == pytest.approx(op.centre_pixel, abs=0.02)
    assert op.centre_pixel == (np.ceil(nx / 2), np.ceil(ny / 2))
    # Clean cubes are binned about n / 2 on every axis; on odd axes KinMS's beam moves them half a pixel on.
    clean = model_cube(op, clean=True, **tutorial_params(inc=0.0, sb_prof=compact, vel_prof=np.zeros_like(compact)))
    assert centroid(clean.sum(axis=0)) == pytest.approx((nx / 2.0, ny / 2.0), abs=0.02)
    spectrum = cube.sum(axis=(1, 2))
    channel = (spectrum * np.arange(nv)).sum() / spectrum.sum()
    # A cold face-on disc has every cloudlet at v = 0 exactly: nearest-channel rounding (half to even, as KinMS).
    assert channel == pytest.approx(np.rint(nv / 2.0), abs=0.01)


def test_phase_centre_and_velocity_offsets_move_the_disc(tutorial_obspars):
    compact = tutorial_params(sb_prof=np.exp(-tutorial_params()["sb_rad"] / 2.0), int_flux=1.0)
    base = model_cube(tutorial_obspars, n_clouds=SMALL, **compact)
    moved = model_cube(tutorial_obspars, n_clouds=SMALL, **compact, phase_cent=(5.0, -3.0), v_offset=40.0)
    (bx, by), (mx, my) = centroid(base.sum(axis=0)), centroid(moved.sum(axis=0))
    assert mx - bx == pytest.approx(5.0, abs=0.05)
    assert my - by == pytest.approx(-3.0, abs=0.05)
    channels = np.arange(tutorial_obspars.nv)
    bv = (base.sum(axis=(1, 2)) * channels).sum() / base.sum()
    mv = (moved.sum(axis=(1, 2)) * channels).sum() / moved.sum()
    assert mv - bv == pytest.approx(2.0, abs=0.05)


def test_constant_profiles_equal_scalars(tutorial_obspars):
    rad = tutorial_params()["sb_rad"]
    ones = np.ones_like(rad)
    scalar = model_cube(tutorial_obspars, n_clouds=SMALL, **tutorial_params(gas_sigma=15.0, disk_thick=1.0))
    profile = model_cube(
        tutorial_obspars,
        n_clouds=SMALL,
        **tutorial_params(inc=45.0 * ones, pa=270.0 * ones, gas_sigma=15.0 * ones, disk_thick=ones),
    )
    np.testing.assert_allclose(profile, scalar, rtol=0, atol=1e-12 * scalar.max())


def test_warp_changes_the_outer_disc_only(tutorial_obspars):
    rad = tutorial_params()["sb_rad"]
    pa_warp = np.where(rad < 10.0, 270.0, 300.0)
    flat = model_cube(tutorial_obspars, n_clouds=SMALL, clean=True, **tutorial_params())
    warped = model_cube(tutorial_obspars, n_clouds=SMALL, clean=True, **tutorial_params(pa=pa_warp))
    yy, xx = np.indices(flat.shape[1:])
    r = np.hypot(xx - 32, yy - 32)
    inner, outer = r < 4, r > 14
    # Only the normalisation (flux kept inside the cube) touches the inner disc.
    assert np.abs(warped - flat).sum(axis=0)[inner].sum() < 1e-2 * flat.sum(axis=0)[inner].sum()
    assert np.abs(warped - flat).sum(axis=0)[outer].sum() > 0.3 * flat.sum(axis=0)[outer].sum()


def test_thick_disc_puffs_up_an_edge_on_disc(tutorial_obspars):
    thin = model_cube(tutorial_obspars, n_clouds=SMALL, **tutorial_params(inc=90.0, pa=0.0))
    thick = model_cube(tutorial_obspars, n_clouds=SMALL, **tutorial_params(inc=90.0, pa=0.0, disk_thick=3.0))

    def width_x(cube):
        image = cube.sum(axis=0)
        x = np.arange(image.shape[1])
        profile = image.sum(axis=0)
        mean = (profile * x).sum() / profile.sum()
        return np.sqrt((profile * (x - mean) ** 2).sum() / profile.sum())

    # PA 0 puts the major axis along y, so the disc's height shows along x.
    assert width_x(thick) > 1.3 * width_x(thin)


def test_dispersion_widens_the_spectrum(tutorial_obspars):
    cold = model_cube(tutorial_obspars, n_clouds=SMALL, **tutorial_params(inc=0.0))
    hot = model_cube(tutorial_obspars, n_clouds=SMALL, **tutorial_params(inc=0.0, gas_sigma=40.0))

    def channel_width(cube):
        spec = cube.sum(axis=(1, 2))
        v = np.arange(spec.size) * 20.0
        mean = (spec * v).sum() / spec.sum()
        return np.sqrt((spec * (v - mean) ** 2).sum() / spec.sum())

    assert channel_width(cold) < 10.0
    assert channel_width(hot) == pytest.approx(np.hypot(40.0, 20.0 / np.sqrt(12.0)), rel=0.05)


@pytest.mark.parametrize("bpa", [0.0, 30.0, 45.0, 90.0, 135.0])
def test_beam_major_axis_points_north_through_east(bpa):
    """FITS BPA: from +y (north) towards -x (east, as RA decreases along x)."""
    psf = gaussian_psf((6.0, 3.0, bpa), 1.0)
    y, x = np.indices(psf.shape, dtype=float)
    x -= psf.shape[1] // 2
    y -= psf.shape[0] // 2
    w = psf / psf.sum()
    cov = [[(w * x * x).sum(), (w * x * y).sum()], [(w * x * y).sum(), (w * y * y).sum()]]
    values, vectors = np.linalg.eigh(cov)
    major = vectors[:, 1]
    expected = np.array([-np.sin(np.radians(bpa)), np.cos(np.radians(bpa))])
    assert abs(abs(major @ expected) - 1.0) < 1e-6
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0) * values)
    np.testing.assert_allclose(fwhm, [3.0, 6.0], rtol=0.02)


@pytest.mark.parametrize("shape", [(3, 40, 40), (2, 37, 52)])
def test_fft_convolution_is_linear_and_matches_direct_convolution(shape):
    rng = np.random.default_rng(0)
    cube = np.zeros(shape)
    cube[0, 0, 0] = 1.0  # corners and edges: wrap-around would show here
    cube[0, -1, -2] = 2.0
    cube[1] = rng.random(shape[1:])
    psf = gaussian_psf((7.0, 4.0, 30.0), 1.0)
    convolver = BeamConvolver(shape, psf, planner_effort="FFTW_ESTIMATE")
    result = convolver(cube)
    kernel = psf / psf.sum()
    for k in range(shape[0]):
        direct = convolve2d(cube[k], kernel, mode="same", boundary="fill")
        np.testing.assert_allclose(result[k], direct, rtol=0, atol=1e-12)


def test_fast_fft_sizes():
    assert [fast_fft_size(n) for n in (1, 64, 65, 75, 97, 129, 300)] == [1, 64, 80, 80, 128, 160, 320]


def test_fits_round_trip_gives_every_channel_velocity_and_pixel_position(tmp_path):
    op = ObsPars(
        nx=33,
        ny=40,
        nv=21,
        cellsize=0.5,
        dv=10.0,
        beam=(2.0, 1.5, 20.0),
        ra=150.0,
        dec=-30.0,
        v_start=1400.0,
        restfreq=230.538e9,
    )
    cube = model_cube(op, n_clouds=SMALL, **tutorial_params(v_offset=op.velocities.mean() - op.centre_velocity))
    path = write_cube(tmp_path / "m.fits", cube, op)
    with fits.open(path) as hdul:
        header, data = hdul[0].header, hdul[0].data
    assert data.shape == (21, 40, 33)
    np.testing.assert_allclose(data, cube, rtol=1e-6, atol=1e-6 * cube.max())
    wcs = WCS(header)
    spectral = wcs.spectral.pixel_to_world(np.arange(op.nv))
    np.testing.assert_allclose(spectral.to_value("km/s"), op.velocities, atol=1e-9)
    np.testing.assert_allclose(spectral.to_value("km/s"), 1400.0 + 10.0 * np.arange(21), atol=1e-9)
    celestial = wcs.celestial
    centre = celestial.pixel_to_world(*op.reference_pixel)
    assert centre.ra.deg == pytest.approx(150.0) and centre.dec.deg == pytest.approx(-30.0)
    # one pixel to +x is 0.5" west (RA smaller), one pixel to +y is 0.5" north
    east = celestial.pixel_to_world(op.reference_pixel[0] + 1, op.reference_pixel[1])
    north = celestial.pixel_to_world(op.reference_pixel[0], op.reference_pixel[1] + 1)
    assert centre.spherical_offsets_to(east)[0].to_value("arcsec") == pytest.approx(-0.5, abs=1e-6)
    assert centre.spherical_offsets_to(north)[1].to_value("arcsec") == pytest.approx(0.5, abs=1e-6)
    assert header["BMAJ"] * 3600 == pytest.approx(2.0) and header["BPA"] == pytest.approx(20.0)
    assert header["BUNIT"] == "Jy/beam"


def test_obspars_json_and_tutorial_round_trips(tmp_path, tutorial_obspars):
    op = tutorial_obspars.replace(ra=10.0, dec=20.0, v_start=500.0, restfreq=1.42e9)
    op.to_json(tmp_path / "obspars.json")
    assert ObsPars.from_json(tmp_path / "obspars.json") == op
    tutorial = {"xsize": 64.0, "ysize": 64.0, "vsize": 500.0, "cellsize": 1.0, "dv": 20.0, "beamsize": [4.0, 4.0, 0]}
    assert ObsPars.from_tutorial(tutorial) == tutorial_obspars
    assert ObsPars.from_tutorial(tutorial_obspars.to_tutorial()) == tutorial_obspars


# An obspars.json as read_cube and trim_cube wrote it when the provenance was an untyped dict on ObsPars: every
# key that dict could hold (a real file holds some of them), written as ObsPars.to_json wrote it.
FIRST_LAYOUT = {
    "beam": [4.68272664583, 3.85103272273, 15.5410995483],
    "bunit": "Jy/beam",
    "cellsize": 1.00000003811,
    "dec": 5.2505,
    "dv": 20.0,
    "extra": {
        "beam_source": "beams_table",
        "beam_spread": {
            "area_ratio_max_min": 1.38,
            "bmaj_max": 3.6,
            "bmaj_min": 3.0,
            "bmin_max": 2.3,
            "bmin_min": 2.0,
            "bpa_max": 40.0,
            "bpa_min": 40.0,
            "method": "median-area channel beam",
            "n_channels": 21,
        },
        "bunit_original": "JY/BEAM",
        "flipped": {"v": False, "x": True, "y": False},
        "ignored_blank": -32768,
        "pixel_scales_arcsec": [1.0000000381104, 1.2000000457324762],
        "placeholder_beam": {"BMAJ": -1.0, "BMIN": -1.0, "BPA": 0.0},
        "restfreq_source": "HISTORY FREQ0",
        "sky_rotation_deg": 3.0,
        "sky_skew_deg": -6.0,
        "source_file": "/data/NGC4324.fits",
        "spectral_ctype": "VELO-LSR",
        "trim_offset": [0, 2, 3],
        "trim_original_shape": [21, 100, 100],
        "unit_scale": 1.0,
        "units_normalised": {"BUNIT": ["JY/BEAM", "Jy/beam"]},
        "velocity_convention": {"convention": "radio", "reason": "Miriad file", "requested": "auto"},
        "velocity_nonlinearity_kms": 0.012,
    },
    "nv": 21,
    "nx": 96,
    "ny": 96,
    "projection": "SIN",
    "ra": 185.77575,
    "radesys": "FK5",
    "restfreq": 115271202000.0,
    "specsys": "LSRK",
    "v_start": 1450.0,
    "x_ref": 47.0,
    "y_ref": 48.0,
}


def test_obspars_json_of_the_first_layout_loads_into_typed_provenance_and_is_written_unchanged(tmp_path):
    text = json.dumps(FIRST_LAYOUT, indent=2, sort_keys=True) + "\n"
    (tmp_path / "obspars.json").write_text(text)
    op = ObsPars.from_json(tmp_path / "obspars.json")
    assert op.provenance.flipped == {"v": False, "x": True, "y": False}
    assert op.provenance.beam_spread["n_channels"] == 21
    assert op.provenance.trim_offset == [0, 2, 3]
    assert {name: getattr(op.provenance, name) for name in FIRST_LAYOUT["extra"]} == FIRST_LAYOUT["extra"]
    assert op.to_dict() == FIRST_LAYOUT
    op.to_json(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text
    # an ObsPars made in Python records nothing, and is written with an empty extra, as before
    assert ObsPars(nx=4, ny=4, nv=3, cellsize=1.0, dv=10.0, beam=(2.0, 2.0, 0.0)).to_dict()["extra"] == {}


def test_unknown_provenance_entries_are_dropped_but_unknown_obspars_keys_refused(tmp_path, caplog):
    data = json.loads(json.dumps(FIRST_LAYOUT))
    data["extra"]["from_a_later_version"] = 1
    (tmp_path / "obspars.json").write_text(json.dumps(data))
    with caplog.at_level(logging.DEBUG, logger="kinms_core.obspars"):
        op = ObsPars.from_json(tmp_path / "obspars.json")
    assert "from_a_later_version" in caplog.text
    assert op.to_dict() == FIRST_LAYOUT
    assert Provenance.from_dict({"flipped": {"x": True, "y": True, "v": False}}) == Provenance(
        flipped={"x": True, "y": True, "v": False}
    )
    data["not_an_obspars_key"] = 1
    (tmp_path / "obspars.json").write_text(json.dumps(data))
    with pytest.raises(CorruptFileError, match="unknown ObsPars keys"):
        ObsPars.from_json(tmp_path / "obspars.json")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"sb_prof": np.ones(5)}, "sb_prof has 5 values"),
        ({"vel_prof": np.ones(4)}, "vel_prof has 4 values"),
        ({"sb_prof": np.full(334, np.nan)}, "sb_prof must be finite"),
        ({"sb_prof": -np.ones(334)}, "sb_prof must be non-negative"),
        ({"sb_prof": np.zeros(334)}, "sb_prof integrates to zero"),
        ({"inc": np.nan}, "inc must be finite"),
        ({"pa": np.inf}, "pa must be finite"),
        ({"inc": np.ones(7)}, "inc has 7 values but vel_rad has 334"),
        ({"pa": np.ones(7)}, "pa has 7 values"),
        ({"disk_thick": np.ones(3)}, "disk_thick has 3 values but sb_rad"),
        ({"gas_sigma": -1.0}, "gas_sigma must be non-negative"),
        ({"int_flux": 0.0}, "int_flux must be a positive"),
        ({"int_flux": -3.0}, "int_flux must be a positive"),
        ({"sb_rad": np.arange(334.0)[::-1]}, "sb_rad must be strictly increasing"),
        ({"phase_cent": (500.0, 0.0)}, "falls entirely outside the cube"),
        ({"v_offset": 1e4}, "falls entirely outside the cube"),
    ],
)
def test_bad_input_names_the_argument(tutorial_obspars, changes, match):
    with pytest.raises(ValueError, match=match):
        model_cube(tutorial_obspars, n_clouds=SMALL, **tutorial_params(**changes))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cellsize": 0.0}, "cellsize must be a positive"),
        ({"cellsize": -1.0}, "cellsize must be a positive"),
        ({"dv": np.nan}, "dv must be a positive"),
        ({"beam": (np.nan, 1.0, 0.0)}, "beam must be"),
        ({"beam": (0.0, 1.0, 0.0)}, "bmaj|bmin"),
        ({"nx": 0}, "nx must be a positive integer"),
    ],
)
def test_bad_obspars_name_the_field(kwargs, match):
    values = dict(nx=16, ny=16, nv=8, cellsize=1.0, dv=10.0, beam=(3.0, 3.0, 0.0))
    values.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ObsPars(**values)


def test_beam_that_does_not_fit_the_cube_is_refused():
    op = ObsPars(nx=16, ny=16, nv=8, cellsize=1.0, dv=10.0, beam=(20.0, 5.0, 0.0))
    with pytest.raises(ValueError, match="beam: bmaj 20 arcsec does not fit the cube"):
        CubeModel(op)


WISDOM_PROBE = """
import sys, numpy as np
from kinms_core import CubeModel, ObsPars
rad = np.arange(0.0, 40.0, 0.5)
model = CubeModel(ObsPars(nx=96, ny=80, nv=32, cellsize=0.5, dv=10.0, beam=(3.0, 2.0, 30.0)), n_clouds=4096)
np.save(sys.argv[1], model.cube(inc=50.0, pa=30.0, sb_rad=rad, sb_prof=np.exp(-rad / 4), vel_rad=rad,
                                vel_prof=np.full(rad.size, 150.0), int_flux=10.0))
"""


def test_fft_plans_are_shared_so_that_another_process_is_bit_identical(tmp_path, monkeypatch):
    """FFTW_MEASURE picks plans by timing; the machine's wisdom file makes a later process pick the same ones."""
    import subprocess
    import sys

    wisdom = tmp_path / "cache" / "wisdom.json"
    monkeypatch.setenv("KINMS_CORE_FFTW_WISDOM", str(wisdom))
    cubes = []
    for name in ("first", "second"):
        out = tmp_path / f"{name}.npy"
        subprocess.run([sys.executable, "-c", WISDOM_PROBE, str(out)], check=True)
        if name == "first":
            assert wisdom.exists() and "fftw_wisdom" in wisdom.read_text()
            saved = wisdom.stat().st_mtime_ns
        cubes.append(np.load(out))
    assert np.array_equal(cubes[0], cubes[1])
    assert wisdom.stat().st_mtime_ns == saved  # the second process found every plan it needed


def test_unusable_wisdom_file_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("KINMS_CORE_FFTW_WISDOM", str(blocker / "wisdom.json"))
    convolver = BeamConvolver((4, 16, 16), gaussian_psf((3.0, 3.0, 0.0), 1.0))
    assert "FFTW wisdom not shared" in caplog.text
    assert convolver(np.ones((4, 16, 16))).shape == (4, 16, 16)


def test_profiles_read_at_cloudlet_radii_are_numpy_s_interpolation():
    from kinms_core.model import _AtRadius

    rng = np.random.default_rng(0)
    grid = np.arange(0.0, 40.0, 1.0 / 3.0)
    radii = np.concatenate([rng.uniform(-1.0, 45.0, 10_000), grid, [0.0, grid[-1]]])  # beyond both ends too
    at_radius = _AtRadius(grid, radii)
    for profile in (200.0 * np.arctan(grid / 3.0), 30.0 - 0.5 * grid):  # one lookup serves every profile
        np.testing.assert_allclose(at_radius(profile), np.interp(radii, grid, profile), atol=1e-9)
    warp = 230.0 + 0.8 * grid
    sin_pa, cos_pa = at_radius.sin_cos(warp)
    np.testing.assert_allclose(sin_pa, np.interp(radii, grid, np.sin(np.radians(warp))), atol=1e-12)
    np.testing.assert_allclose(cos_pa, np.interp(radii, grid, np.cos(np.radians(warp))), atol=1e-12)
    assert at_radius(np.array([12.5])) == 12.5 and at_radius.sin_cos(np.array([90.0]))[0] == 1.0
    uneven = np.array([0.0, 1.0, 5.0, 6.0])
    np.testing.assert_array_equal(_AtRadius(uneven, radii)(uneven**2), np.interp(radii, uneven, uneven**2))


def test_a_reused_model_bins_each_set_of_sky_cloudlets_where_it_lies():
    """The model finds the pixels of sky-fixed cloudlets once per set: a second set on the same model gives the
    cube a fresh model gives it, and the first set's cube is unchanged when it comes back."""
    from kinms_core.model import SkyClouds

    op = ObsPars(nx=32, ny=32, nv=16, cellsize=1.0, dv=20.0, beam=(3.0, 3.0, 0.0))
    yy, xx = np.indices((op.ny, op.nx), dtype=float)
    left = np.exp(-0.5 * (np.hypot(xx - 10, yy - 16) / 3.0) ** 2)
    right = np.exp(-0.5 * (np.hypot(xx - 22, yy - 16) / 3.0) ** 2)
    kinematics = {"inc": 60.0, "pa": 90.0, "vel_rad": np.arange(0.0, 30.0, 0.5), "vel_prof": np.full(60, 100.0)}
    first, second = (SkyClouds.from_map(s, op, 2**12, seed=1) for s in (left, right))
    model = CubeModel(op, n_clouds=2**12, seed=1)
    cube_first = model.sky_cube(first, int_flux=1.0, **kinematics)
    cube_second = model.sky_cube(second, int_flux=1.0, **kinematics)
    fresh = CubeModel(op, n_clouds=2**12, seed=1).sky_cube(second, int_flux=1.0, **kinematics)
    np.testing.assert_array_equal(cube_second, fresh)
    assert centroid(cube_second.sum(axis=0))[0] > centroid(cube_first.sum(axis=0))[0] + 8.0
    np.testing.assert_array_equal(model.sky_cube(first, int_flux=1.0, **kinematics), cube_first)
