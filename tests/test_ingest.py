"""read_cube on every header variant the surveys produce, written here card by card.

Each cube holds one bright voxel at a known pixel: after reading, the brightest voxel must sit at the same sky
position and radio velocity (astropy's own conversion of the input header), in the pipeline's orientation.
"""

from __future__ import annotations

import gzip
import json
import logging
import math

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS
from conftest import real_data_folder
from ingest_helpers import sky_header

from kinms_core.cli import main
from kinms_core.errors import CubeError, MissingInputError, NoBeamError, RestFrequencyError, SettingsError
from kinms_core.fitsio import obspars_wcs
from kinms_core.ingest import DEFAULT_MAX_VOXELS, read_cube

# The tests build WCSs from AIPS-style headers on purpose; astropy's notes about fixing them are expected.
pytestmark = pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")

C_KMS = 299792.458
NX, NY, NV = 10, 12, 16
BRIGHT = (5, 3, 7)  # (iv, iy, ix) of the bright voxel in the input cube (spectral axis as written)
HI_REST = 1.420405751e9
CO_REST = 115.2712018e9


def spectral_cards(ctype: str, crval: float, cdelt: float, cunit: str, **extra: float | str) -> dict:
    return {"CTYPE": ctype, "CRVAL": crval, "CDELT": cdelt, "CRPIX": 1.0, "CUNIT": cunit, **extra}


def build_header(spec: dict, *, stokes: int | None = None, sky: fits.Header | None = None) -> fits.Header:
    """Axes 1, 2 = RA, Dec; the spectral axis 3 (or 4 with a Stokes axis 3); Stokes at ``stokes`` if given."""
    header = sky if sky is not None else sky_header(NX, NY)
    spec_axis = 4 if stokes == 3 else 3
    for key in ("CTYPE", "CRVAL", "CDELT", "CRPIX", "CUNIT"):
        header[f"{key}{spec_axis}"] = spec[key]
    for key, value in spec.items():
        if key not in ("CTYPE", "CRVAL", "CDELT", "CRPIX", "CUNIT"):
            header[key] = value
    if stokes is not None:
        header[f"CTYPE{stokes}"] = "STOKES"
        header[f"CRVAL{stokes}"] = 1.0
        header[f"CDELT{stokes}"] = 1.0
        header[f"CRPIX{stokes}"] = 1.0
    return header


def add_beam(header: fits.Header, kind: str = "header") -> None:
    if kind == "header":
        header["BMAJ"] = 3.0 / 3600.0
        header["BMIN"] = 2.0 / 3600.0
        header["BPA"] = 30.0
    elif kind == "aips":
        header["HISTORY"] = "AIPS   IMAGR  something else"
        header["HISTORY"] = "AIPS   CLEAN BMAJ=  1.3889E-03 BMIN=  1.1111E-03 BPA=  45.00"


def cube_data(stokes: int | None = None, value: float = 10.0) -> np.ndarray:
    """Noise-free ramp with one bright voxel, shaped for the header's axes."""
    data = np.linspace(0.0, 1.0, NV * NY * NX, dtype=np.float32).reshape(NV, NY, NX)
    data[BRIGHT] = value
    if stokes == 3:
        return data[:, None]
    if stokes == 4:
        return data[None]
    return data


def write(path, header: fits.Header, data: np.ndarray, *, beam: str = "header", unit: str = "Jy/beam", tables=()):
    header = header.copy()
    add_beam(header, beam)
    header["BUNIT"] = unit
    fits.HDUList([fits.PrimaryHDU(data=data, header=header), *tables]).writeto(path, overwrite=True)
    return path


def expected_velocities(header: fits.Header, rest_hz: float | None) -> np.ndarray:
    """Radio velocities (km/s) of the input channels, by astropy's spectral conversion."""
    header = header.copy()
    if rest_hz is not None and "RESTFRQ" not in header and "RESTFREQ" not in header:
        header["RESTFRQ"] = rest_hz  # tells astropy the velocity convention; radio velocities do not depend on it
    wcs = WCS(header)
    coord = wcs.spectral.pixel_to_world(np.arange(NV))
    return coord.to(u.km / u.s, doppler_convention="radio", doppler_rest=rest_hz * u.Hz).value


def check_orientation(cube, header: fits.Header, expected_v: np.ndarray, *, scale: float = 1.0) -> None:
    """Velocity ascending, RA decreasing with x, Dec increasing with y, and the bright voxel where it belongs."""
    op = cube.obspars
    assert cube.data.shape == (NV, NY, NX) == op.shape
    assert cube.data.dtype == np.float64
    assert op.dv > 0
    assert np.all(np.diff(cube.velocities) > 0)
    flipped_v = expected_v[-1] < expected_v[0]
    np.testing.assert_allclose(cube.velocities, np.sort(expected_v), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        op.velocities, cube.velocities, rtol=0, atol=(op.provenance.velocity_nonlinearity_kms or 0) + 1e-6
    )
    # The bright voxel: same sky position and velocity as written.
    iv, iy, ix = np.unravel_index(np.nanargmax(cube.data), cube.data.shape)
    assert iv == (NV - 1 - BRIGHT[0] if flipped_v else BRIGHT[0])
    assert cube.velocities[iv] == pytest.approx(expected_v[BRIGHT[0]], abs=1e-6)
    sky_in = WCS(header).celestial.pixel_to_world(BRIGHT[2], BRIGHT[1])
    for wcs in (cube.wcs, WCS(cube.header).celestial, obspars_wcs(op).celestial):
        sky_out = wcs.pixel_to_world(ix, iy)
        assert sky_in.separation(sky_out).to_value(u.arcsec) < 1e-4
    # East to the left, north up.
    cel = WCS(cube.header).celestial
    ra0, dec0 = cel.all_pix2world([[0, 0], [1, 0], [0, 1]], 0).T
    assert ra0[1] < ra0[0] and dec0[2] > dec0[0]
    assert cube.data[iv, iy, ix] == pytest.approx(10.0 * scale, rel=1e-5)


# ----------------------------------------------------------------------------------------- spectral axis variants
SPECTRAL_VARIANTS = {
    # name: (spectral cards, rest frequency for the expected conversion, expected specsys)
    "freq_restfrq_lsrk_desc": (
        spectral_cards("FREQ", 115.0e9, -2.0e6, "Hz", RESTFRQ=CO_REST, SPECSYS="LSRK"),
        CO_REST,
        "LSRK",
    ),
    "freq_restfreq_topo_asc": (
        spectral_cards("FREQ", 115.0e9, 2.0e6, "Hz", RESTFREQ=CO_REST, SPECSYS="TOPOCENT"),
        CO_REST,
        "TOPOCENT",
    ),
    "freq_ghz_bary": (
        spectral_cards("FREQ", 1.41, 1.0e-4, "GHz", RESTFRQ=HI_REST, SPECSYS="BARYCENT"),
        HI_REST,
        "BARYCENT",
    ),
    "vrad_ms_asc": (spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s", SPECSYS="BARYCENT"), HI_REST, "BARYCENT"),
    "vrad_kms_desc": (spectral_cards("VRAD", 1200.0, -10.0, "km/s", SPECSYS="LSRK"), HI_REST, "LSRK"),
    "velo_lsr_radio_velref": (spectral_cards("VELO-LSR", 1.0e6, 1.0e4, "m/s", VELREF=257), HI_REST, "LSRK"),
    "velo_hel_optical": (
        spectral_cards("VELO-HEL", 3.0e6, -1.0e4, "m/s", RESTFRQ=HI_REST),
        HI_REST,
        "BARYCENT",
    ),
    "vopt_ms_rest": (
        spectral_cards("VOPT", 3.0e6, 1.0e4, "m/s", RESTFRQ=HI_REST, SPECSYS="BARYCENT"),
        HI_REST,
        "BARYCENT",
    ),
    "felo_hel": (spectral_cards("FELO-HEL", 3.0e6, 1.0e4, "m/s", RESTFREQ=HI_REST), HI_REST, "BARYCENT"),
}


@pytest.mark.parametrize("name", sorted(SPECTRAL_VARIANTS))
def test_spectral_variants(tmp_path, name):
    spec, rest, specsys = SPECTRAL_VARIANTS[name]
    header = build_header(spec)
    path = write(tmp_path / f"{name}.fits", header, cube_data())
    cube = read_cube(path)
    expected_v = expected_velocities(header, rest)
    check_orientation(cube, header, expected_v)
    op = cube.obspars
    assert op.specsys == specsys
    assert op.cellsize == pytest.approx(1.0, rel=1e-9)
    assert op.beam == pytest.approx((3.0, 2.0, 30.0))
    assert (op.ra, op.dec) == pytest.approx((150.0, 30.0))
    assert op.provenance.flipped["v"] == bool(expected_v[-1] < expected_v[0])
    if "RESTFRQ" in spec or "RESTFREQ" in spec:
        assert op.restfreq == pytest.approx(rest)
    assert op.dv == pytest.approx(abs(np.mean(np.diff(expected_v))), rel=1e-3)
    assert cube.obspars.to_dict()["extra"]["spectral_ctype"] == spec["CTYPE"]


def test_vopt_kms_without_rest_frequency(tmp_path):
    """Optical to radio velocity needs no rest frequency: v_radio = c (1 - 1 / (1 + v_opt / c))."""
    header = build_header(spectral_cards("VOPT", 5000.0, 20.0, "km/s", SPECSYS="BARYCENT"))
    cube = read_cube(write(tmp_path / "vopt.fits", header, cube_data()))
    v_opt = 5000.0 + 20.0 * np.arange(NV)
    np.testing.assert_allclose(cube.velocities, C_KMS * (1.0 - 1.0 / (1.0 + v_opt / C_KMS)), atol=1e-6)
    assert cube.obspars.restfreq is None
    # Linear in optical velocity is not linear in radio velocity: recorded, and obspars is the best straight line.
    assert 0 < cube.obspars.provenance.velocity_nonlinearity_kms < 0.1 * cube.obspars.dv


def test_velo_without_velref_is_read_as_optical_with_a_warning(tmp_path, caplog):
    header = build_header(spectral_cards("VELO-LSR", 3.0e6, 1.0e4, "m/s", RESTFRQ=HI_REST))
    with caplog.at_level(logging.WARNING, logger="kinms_core.ingest"):
        cube = read_cube(write(tmp_path / "velo.fits", header, cube_data()))
    assert any("VELREF" in w for w in cube.warnings)
    v_opt = 3000.0 + 10.0 * np.arange(NV)
    np.testing.assert_allclose(cube.velocities, C_KMS * (1.0 - 1.0 / (1.0 + v_opt / C_KMS)), atol=1e-6)


def radio_of_optical(v_opt: np.ndarray) -> np.ndarray:
    return C_KMS * (1.0 - 1.0 / (1.0 + v_opt / C_KMS))


def velo_header(origin: str | None = None, history: str | None = None, **cards) -> fits.Header:
    header = build_header(spectral_cards("VELO-LSR", 3.0e6, 1.0e4, "m/s", RESTFRQ=HI_REST, **cards))
    if origin is not None:
        header["ORIGIN"] = origin
    if history is not None:
        header["HISTORY"] = history
    return header


VELO_AS_WRITTEN = 3000.0 + 10.0 * np.arange(NV)


@pytest.mark.parametrize(
    ("origin", "history", "convention", "card"),
    [
        (None, "INVERT: Miriad invert: Revision 1.12", "radio", "HISTORY 'INVERT: Miriad invert"),
        ("Miriad fits: Revision 1.32", None, "radio", "ORIGIN 'Miriad fits"),
        (None, "AIPS   IMAGR  BMAJ", "optical", None),
        ("NRAO AIPS", None, "optical", None),
    ],
)
def test_velo_without_velref_is_radio_for_miriad_and_optical_otherwise(tmp_path, origin, history, convention, card):
    """Miriad writes VELO-xxx for radio velocity (FELO-xxx for optical); AIPS's VELO-xxx is optical."""
    header = velo_header(origin, history)
    cube = read_cube(write(tmp_path / "velo.fits", header, cube_data()))
    expected = VELO_AS_WRITTEN if convention == "radio" else radio_of_optical(VELO_AS_WRITTEN)
    np.testing.assert_allclose(cube.velocities, expected, atol=1e-6)
    chosen = cube.obspars.provenance.velocity_convention
    assert (chosen["convention"], chosen["requested"]) == (convention, "auto")
    warning = next(w for w in cube.warnings if "without VELREF" in w)
    assert f"read as {convention} velocity" in warning
    other = "optical" if convention == "radio" else "radio"
    assert f"--velocity-convention {other}" in warning and "VELREF" in warning
    if card:
        assert card in warning and card in chosen["reason"]
    else:
        assert "AIPS convention" in warning
    if convention == "radio":  # the header's numbers exactly, not their round trip through frequency
        assert cube.velocities[0] == 3000.0 and cube.obspars.velocity_start == 3000.0 and cube.obspars.dv == 10.0
        assert (cube.obspars.provenance.velocity_nonlinearity_kms or 0.0) == 0.0
        assert cube.obspars.specsys == "LSRK"


@pytest.mark.parametrize(
    ("origin", "convention", "expected"),
    [("Miriad fits", "optical", radio_of_optical(VELO_AS_WRITTEN)), (None, "radio", VELO_AS_WRITTEN)],
)
def test_velocity_convention_given_overrides_the_guess_silently(tmp_path, origin, convention, expected):
    header = velo_header(origin)
    cube = read_cube(write(tmp_path / "velo.fits", header, cube_data()), velocity_convention=convention)
    np.testing.assert_allclose(cube.velocities, expected, atol=1e-6)
    assert cube.obspars.provenance.velocity_convention == {
        "convention": convention,
        "requested": convention,
        "reason": "given",
    }
    assert not any("without VELREF" in w for w in cube.warnings)


def test_velref_in_the_header_wins_over_the_velocity_convention(tmp_path):
    path = write(tmp_path / "velref.fits", velo_header("Miriad fits", VELREF=1), cube_data())
    for convention in ("auto", "radio"):
        cube = read_cube(path, velocity_convention=convention)
        np.testing.assert_allclose(cube.velocities, radio_of_optical(VELO_AS_WRITTEN), atol=1e-6)
        assert cube.obspars.provenance.velocity_convention is None
        assert not any("VELREF" in w for w in cube.warnings)


def test_velocity_convention_must_be_known(tmp_path):
    path = write(tmp_path / "velo.fits", velo_header(), cube_data())
    with pytest.raises(SettingsError, match=r"velocity_convention must be one of .*'sideways'"):
        read_cube(path, velocity_convention="sideways")


def test_velocity_convention_on_the_command_line(tmp_path, capsys):
    path = write(tmp_path / "velo.fits", velo_header(), cube_data())
    assert main(["obspars", str(path), "--velocity-convention", "radio", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["obspars"]["extra"]["velocity_convention"]["convention"] == "radio"
    assert out["obspars"]["v_start"] == pytest.approx(3000.0)


@pytest.mark.parametrize("stokes", [3, 4])
def test_degenerate_stokes_axis(tmp_path, stokes):
    spec = spectral_cards("FREQ", 1.41e9, -1.0e5, "Hz", RESTFRQ=HI_REST, SPECSYS="LSRK")
    header = build_header(spec, stokes=stokes)
    path = write(tmp_path / f"stokes{stokes}.fits", header, cube_data(stokes))
    cube = read_cube(path)
    check_orientation(cube, header, expected_velocities(header, HI_REST))


MIRIAD_FREQ0 = "FREQ0   =   1.420405718410E+09 / REST FREQUENCY"


def test_rest_frequency_from_a_history_card(tmp_path):
    """Miriad keeps the input header's FREQ0 in HISTORY: a header without a rest frequency card may use it."""
    header = build_header(spectral_cards("FREQ", 1.41e9, -1.0e5, "Hz"))
    header["HISTORY"] = "INVERT:   restfreq=1.42040575"  # a task input in GHz: not a card
    header["HISTORY"] = MIRIAD_FREQ0
    cube = read_cube(write(tmp_path / "freq0.fits", header, cube_data()))
    assert cube.obspars.restfreq == 1.420405718410e9
    assert cube.obspars.provenance.restfreq_source == "HISTORY FREQ0"
    assert any("rest frequency 1420405718.41 Hz is taken from a HISTORY FREQ0 card" in w for w in cube.warnings)
    check_orientation(cube, header, expected_velocities(header, 1.420405718410e9))
    given = read_cube(tmp_path / "freq0.fits", restfreq=HI_REST)
    assert given.obspars.restfreq == HI_REST
    assert not any("HISTORY" in w for w in given.warnings)


def test_history_rest_frequency_converts_kelvin(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    header["HISTORY"] = "RESTFREQ=   1.15271202000E+11 / rest frequency"
    cube = read_cube(write(tmp_path / "kelvin.fits", header, cube_data(), unit="K"))
    assert cube.obspars.restfreq == 1.15271202e11
    freq = 1.15271202e11 * (1.0 - (1000.0 + 10.0 * BRIGHT[0]) / C_KMS) * u.Hz
    omega = 2 * math.pi * (3.0 * u.arcsec) * (2.0 * u.arcsec) / (8 * math.log(2))
    jy_per_k = (1 * u.K).to(u.Jy, equivalencies=u.brightness_temperature(freq, beam_area=omega)).value
    check_orientation(cube, header, expected_velocities(header, CO_REST), scale=jy_per_k)


def test_history_task_inputs_are_not_rest_frequencies(tmp_path):
    header = build_header(spectral_cards("FREQ", 1.41e9, -1.0e5, "Hz"))
    header["HISTORY"] = "INVERT:   restfreq=1.42040575"
    header["HISTORY"] = "FREQ0   =   1.42040575 / in GHz"
    with pytest.raises(RestFrequencyError, match=r"no rest frequency.*give restfreq"):
        read_cube(write(tmp_path / "ghz.fits", header, cube_data()))


# ----------------------------------------------------------------------------------------- sky axis variants
def _sky(kind: str) -> fits.Header:
    header = sky_header(NX, NY)
    if kind == "cd":
        for key in ("CDELT1", "CDELT2"):
            del header[key]
        header["CD1_1"] = -1.0 / 3600.0
        header["CD1_2"] = 0.0
        header["CD2_1"] = 0.0
        header["CD2_2"] = 1.0 / 3600.0
    elif kind == "pc":
        header["PC1_1"] = 1.0
        header["PC1_2"] = 0.0
        header["PC2_1"] = 0.0
        header["PC2_2"] = 1.0
    elif kind == "ra_increasing":
        header["CDELT1"] = 1.0 / 3600.0
    elif kind == "dec_decreasing":
        header["CDELT2"] = -1.0 / 3600.0
    elif kind == "both_flipped_cd":
        for key in ("CDELT1", "CDELT2"):
            del header[key]
        header["CD1_1"] = 1.0 / 3600.0
        header["CD2_2"] = -1.0 / 3600.0
    return header


@pytest.mark.parametrize("kind", ["cdelt", "cd", "pc", "ra_increasing", "dec_decreasing", "both_flipped_cd"])
def test_sky_axis_variants(tmp_path, kind):
    spec = spectral_cards("VRAD", 1.0e6, -1.0e4, "m/s", SPECSYS="BARYCENT")
    header = build_header(spec, sky=_sky(kind))
    cube = read_cube(write(tmp_path / f"{kind}.fits", header, cube_data()))
    check_orientation(cube, header, expected_velocities(header, HI_REST))
    flipped = cube.obspars.provenance.flipped
    assert flipped["x"] == (kind in ("ra_increasing", "both_flipped_cd"))
    assert flipped["y"] == (kind in ("dec_decreasing", "both_flipped_cd"))
    assert cube.obspars.provenance.sky_rotation_deg is None


def test_rotated_sky_axes_warn_and_record_the_angle(tmp_path, caplog):
    sky = sky_header(NX, NY)
    sky["CROTA2"] = 5.0
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"), sky=sky)
    with caplog.at_level(logging.WARNING, logger="kinms_core.ingest"):
        cube = read_cube(write(tmp_path / "rot.fits", header, cube_data()))
    assert cube.obspars.provenance.sky_rotation_deg == pytest.approx(5.0, abs=1e-6)
    assert "rotated by 5.00 deg" in caplog.text
    # The celestial WCS keeps the rotation: the bright voxel stays at its sky position.
    iv, iy, ix = np.unravel_index(np.argmax(cube.data), cube.data.shape)
    sky_in = WCS(header).celestial.pixel_to_world(BRIGHT[2], BRIGHT[1])
    assert sky_in.separation(cube.wcs.pixel_to_world(ix, iy)).to_value(u.arcsec) < 1e-4


# ----------------------------------------------------------------------------------------- data variants
@pytest.mark.parametrize("bitpix", [16, 32])
def test_blank_integers_with_bscale(tmp_path, bitpix):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    add_beam(header)
    header["BUNIT"] = "Jy/beam"
    dtype = np.int16 if bitpix == 16 else np.int32
    blank = int(np.iinfo(dtype).min)
    ints = np.round(cube_data() * 1000).astype(dtype)
    ints[0, 0, 0] = blank
    hdu = fits.PrimaryHDU(data=ints, header=header)
    hdu.header["BSCALE"] = 0.001
    hdu.header["BZERO"] = 0.5
    hdu.header["BLANK"] = blank
    hdu.writeto(tmp_path / "ints.fits")
    assert fits.getheader(tmp_path / "ints.fits")["BITPIX"] == bitpix
    cube = read_cube(tmp_path / "ints.fits")
    assert np.isnan(cube.data[0, 0, 0])
    assert np.isfinite(cube.data).sum() == cube.data.size - 1
    assert cube.data[BRIGHT] == pytest.approx(10.0 + 0.5, abs=1e-9)


def test_nans_are_kept_as_blank(tmp_path):
    data = cube_data()
    data[:, 0, :] = np.nan
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    cube = read_cube(write(tmp_path / "nan.fits", header, data))
    assert np.isnan(cube.data[:, 0, :]).all()
    assert np.isfinite(cube.data[:, 1:, :]).all()


# ----------------------------------------------------------------------------------------- beams
def test_aips_history_beam(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    cube = read_cube(write(tmp_path / "aips.fits", header, cube_data(), beam="aips"))
    assert cube.obspars.beam == pytest.approx((1.3889e-3 * 3600, 1.1111e-3 * 3600, 45.0))
    assert cube.obspars.provenance.beam_source == "history"


@pytest.mark.parametrize(("bmaj", "bmin"), [(-1.0, -1.0), (0.0, 0.0), (3.0 / 3600.0, -1.0)])
def test_placeholder_beam_is_refused_with_the_fix_and_read_with_a_given_beam(tmp_path, bmaj, bmin):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    header["BMAJ"], header["BMIN"], header["BPA"] = bmaj, bmin, 0.0
    path = write(tmp_path / "placeholder.fits", header, cube_data(), beam="none")
    with pytest.raises(NoBeamError, match=r"placeholder\.fits has a placeholder beam \(BMAJ = .*BMIN = ") as info:
        read_cube(path)
    assert "give bmaj, bmin, bpa in the sheet (arcsec, arcsec, deg)" in str(info.value)
    assert "--beam BMAJ BMIN BPA on the command line" in str(info.value)
    cube = read_cube(path, beam=(15.0, 20.0, 0.0))
    assert cube.obspars.beam == pytest.approx((20.0, 15.0, 90.0))
    assert cube.obspars.provenance.beam_source == "override"
    assert cube.obspars.provenance.placeholder_beam == pytest.approx({"BMAJ": bmaj, "BMIN": bmin, "BPA": 0.0})
    check_orientation(cube, header, expected_velocities(header, HI_REST))


def test_placeholder_beam_gives_way_to_an_aips_history_beam(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    header["BMAJ"], header["BMIN"], header["BPA"] = -1.0, -1.0, 0.0
    cube = read_cube(write(tmp_path / "history.fits", header, cube_data(), beam="aips"))
    assert cube.obspars.beam == pytest.approx((1.3889e-3 * 3600, 1.1111e-3 * 3600, 45.0))
    assert cube.obspars.provenance.beam_source == "history"


def test_blank_on_float_data_is_ignored_and_said(tmp_path, caplog):
    """FITS allows BLANK on integer data only; on float data (GIPSY writes it) no voxel may become blank by it."""
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    header["BLANK"] = -32768
    data = cube_data()
    data[0, 0, 0] = -32768.0
    with pytest.warns(fits.verify.VerifyWarning, match="BLANK"):  # astropy says so on writing (reading: the log)
        path = write(tmp_path / "float_blank.fits", header, data)
    written = fits.Header.fromfile(path)
    assert written["BLANK"] == -32768 and written["BITPIX"] == -32
    with caplog.at_level(logging.INFO, logger="kinms_core.ingest"):
        cube = read_cube(path)
    assert "BLANK = -32768 on BITPIX -32 (floating-point) data is not FITS and is ignored" in caplog.text
    assert cube.obspars.provenance.ignored_blank == -32768
    assert np.isfinite(cube.data).all()
    assert cube.data[0, 0, 0] == -32768.0
    assert any("1 voxels equal BLANK = -32768" in w for w in cube.warnings)
    check_orientation(cube, header, expected_velocities(header, HI_REST))


def beams_table(nchan: int, bmaj: np.ndarray, bmin: np.ndarray, bpa: np.ndarray) -> fits.BinTableHDU:
    """A CASA per-channel beam table (EXTNAME BEAMS)."""
    columns = [
        fits.Column(name="BMAJ", format="1E", unit="arcsec", array=bmaj),
        fits.Column(name="BMIN", format="1E", unit="arcsec", array=bmin),
        fits.Column(name="BPA", format="1E", unit="deg", array=bpa),
        fits.Column(name="CHAN", format="1J", array=np.arange(nchan)),
        fits.Column(name="POL", format="1J", array=np.zeros(nchan)),
    ]
    table = fits.BinTableHDU.from_columns(columns)
    table.header["EXTNAME"] = "BEAMS"
    table.header["NCHAN"] = nchan
    table.header["NPOL"] = 1
    return table


def test_casa_beams_table_uses_the_median_beam_and_records_the_spread(tmp_path):
    bmaj = np.linspace(3.0, 3.6, NV)
    bmin = np.linspace(2.0, 2.3, NV)
    bpa = np.full(NV, 40.0)
    header = build_header(spectral_cards("FREQ", 1.41e9, 1.0e5, "Hz", RESTFRQ=HI_REST))
    header["CASAMBM"] = True
    path = write(tmp_path / "beams.fits", header, cube_data(), beam="none", tables=[beams_table(NV, bmaj, bmin, bpa)])
    cube = read_cube(path)
    check_orientation(cube, header, expected_velocities(header, HI_REST))
    op = cube.obspars
    assert op.provenance.beam_source == "beams_table"
    assert 3.0 < op.beam[0] < 3.6 and op.beam[0] == pytest.approx(np.median(bmaj), abs=0.05)
    spread = op.provenance.beam_spread
    assert spread["bmaj_min"] == pytest.approx(3.0) and spread["bmaj_max"] == pytest.approx(3.6, rel=1e-6)
    assert spread["area_ratio_max_min"] == pytest.approx(3.6 * 2.3 / 6.0, rel=1e-5)


def test_beam_and_restfreq_overrides(tmp_path):
    header = build_header(spectral_cards("FREQ", 1.41e9, 1.0e5, "Hz"))
    path = write(tmp_path / "override.fits", header, cube_data(), beam="none")
    cube = read_cube(path, restfreq=HI_REST, beam=(5.0, 4.0, 10.0))
    assert cube.obspars.beam == (5.0, 4.0, 10.0)
    assert cube.obspars.provenance.beam_source == "override"
    assert cube.obspars.restfreq == HI_REST
    check_orientation(cube, header, expected_velocities(header, HI_REST))


# ----------------------------------------------------------------------------------------- units
def test_mjy_per_beam_is_scaled(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    cube = read_cube(write(tmp_path / "mjy.fits", header, cube_data(), unit="mJy/beam"))
    assert cube.obspars.bunit == "Jy/beam"
    assert cube.obspars.provenance.bunit_original == "mJy/beam"
    check_orientation(cube, header, expected_velocities(header, HI_REST), scale=1e-3)


def test_kelvin_is_converted_with_the_beam_and_frequency(tmp_path):
    spec = spectral_cards("FREQ", 115.0e9, -2.0e6, "Hz", RESTFRQ=CO_REST, SPECSYS="LSRK")
    header = build_header(spec)
    cube = read_cube(write(tmp_path / "kelvin.fits", header, cube_data(), unit="K"))
    assert cube.obspars.provenance.bunit_original == "K"
    # 1 K at the bright voxel's frequency, through the beam's solid angle (astropy's equivalency).
    freq = WCS(header).spectral.pixel_to_world(BRIGHT[0]).to(u.Hz)
    omega = 2 * math.pi * (3.0 * u.arcsec) * (2.0 * u.arcsec) / (8 * math.log(2))
    jy_per_k = (1 * u.K).to(u.Jy, equivalencies=u.brightness_temperature(freq, beam_area=omega)).value
    check_orientation(cube, header, expected_velocities(header, CO_REST), scale=jy_per_k)


# ----------------------------------------------------------------------------------------- legacy unit strings
LEGACY_SPECTRAL_UNITS = {
    # legacy CUNIT3: (canonical spelling, spectral cards written with it)
    "HZ": ("Hz", spectral_cards("FREQ", 1.41e9, -1.0e5, "HZ", RESTFRQ=HI_REST)),
    "KHZ": ("kHz", spectral_cards("FREQ", 1.41e6, -1.0e2, "KHZ", RESTFRQ=HI_REST)),
    "MHZ": ("MHz", spectral_cards("FREQ", 1410.0, -0.1, "MHZ", RESTFRQ=HI_REST)),
    "GHZ": ("GHz", spectral_cards("FREQ", 1.41, -1.0e-4, "GHZ", RESTFRQ=HI_REST)),
    "M/S": ("m/s", spectral_cards("VRAD", 1.0e6, 1.0e4, "M/S")),
    "KM/S": ("km/s", spectral_cards("VRAD", 1000.0, 10.0, "KM/S")),
}


@pytest.mark.parametrize("legacy", sorted(LEGACY_SPECTRAL_UNITS))
def test_legacy_spectral_unit_is_normalised_with_a_warning(tmp_path, legacy):
    canonical, spec = LEGACY_SPECTRAL_UNITS[legacy]
    header = build_header(spec)
    path = write(tmp_path / "legacy.fits", header, cube_data())
    cube = read_cube(path)
    assert cube.obspars.provenance.units_normalised == {"CUNIT3": [legacy, canonical]}
    assert any(f"CUNIT3 '{legacy}' as '{canonical}'" in w for w in cube.warnings)
    good = build_header({**spec, "CUNIT": canonical})
    check_orientation(cube, good, expected_velocities(good, HI_REST))
    assert fits.getheader(path)["CUNIT3"] == legacy  # the file itself is left alone


@pytest.mark.parametrize("legacy", ["DEG", "DEGREE", "DEGREES"])
def test_legacy_sky_unit_is_normalised_with_a_warning(tmp_path, legacy):
    sky = sky_header(NX, NY)
    sky["CUNIT1"] = legacy
    sky["CUNIT2"] = legacy
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"), sky=sky)
    cube = read_cube(write(tmp_path / "legacy.fits", header, cube_data()))
    assert cube.obspars.provenance.units_normalised == {"CUNIT1": [legacy, "deg"], "CUNIT2": [legacy, "deg"]}
    assert any(f"CUNIT1 '{legacy}' as 'deg'" in w for w in cube.warnings)
    assert cube.obspars.cellsize == pytest.approx(1.0, rel=1e-9)
    check_orientation(cube, build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s")), np.arange(NV) * 10.0 + 1000.0)


@pytest.mark.parametrize(
    ("legacy", "canonical", "scale"),
    [
        ("JY/BEAM", "Jy/beam", 1.0),
        ("JY/BEAM ", "Jy/beam", 1.0),
        ("JY/BM", "Jy/beam", 1.0),
        ("MJY/BEAM", "mJy/beam", 1e-3),
    ],
)
def test_legacy_bunit_is_normalised_with_a_warning(tmp_path, legacy, canonical, scale):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    cube = read_cube(write(tmp_path / "legacy.fits", header, cube_data(), unit=legacy))
    assert cube.obspars.provenance.units_normalised == {"BUNIT": [legacy.strip(), canonical]}
    assert cube.obspars.provenance.bunit_original == legacy.strip()
    assert any(f"BUNIT '{legacy.strip()}' as '{canonical}'" in w for w in cube.warnings)
    check_orientation(cube, header, expected_velocities(header, HI_REST), scale=scale)


def test_fits_unit_strings_are_left_alone(tmp_path):
    header = build_header(spectral_cards("FREQ", 1.41e9, -1.0e5, "Hz", RESTFRQ=HI_REST))
    cube = read_cube(write(tmp_path / "fits_units.fits", header, cube_data(), unit="mJy/beam"))
    assert cube.obspars.provenance.units_normalised is None
    assert not any("legacy unit" in w for w in cube.warnings)


# ----------------------------------------------------------------------------------------- compression by content
def test_gzip_content_is_read_whatever_the_name(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    plain = write(tmp_path / "plain.fits", header, cube_data())
    gzipped_as_fits = tmp_path / "gzipped.fits"
    gzipped_as_fits.write_bytes(gzip.compress(plain.read_bytes()))
    plain_as_gz = tmp_path / "plain.fits.gz"
    plain_as_gz.write_bytes(plain.read_bytes())
    reference = read_cube(plain)
    for path in (gzipped_as_fits, plain_as_gz):
        cube = read_cube(path)
        check_orientation(cube, header, expected_velocities(header, HI_REST))
        np.testing.assert_array_equal(cube.data, reference.data)


def test_cut_files_fail_by_content_whatever_the_name(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    raw = write(tmp_path / "plain.fits", header, cube_data()).read_bytes()
    cut_plain_as_gz = tmp_path / "cut_plain.fits.gz"
    cut_plain_as_gz.write_bytes(raw[:4000])
    with pytest.raises(CubeError, match=r"cut_plain\.fits\.gz is truncated.*download"):
        read_cube(cut_plain_as_gz)
    packed = gzip.compress(raw)
    cut_gzip_as_fits = tmp_path / "cut_gzip.fits"
    cut_gzip_as_fits.write_bytes(packed[: len(packed) - 50])
    with pytest.raises(CubeError, match=r"cut_gzip\.fits is not a readable FITS file .*gzip-compressed content"):
        read_cube(cut_gzip_as_fits)


def test_size_of_a_gzip_cube_is_checked_from_its_header_alone(tmp_path, monkeypatch):
    """The header is read through the decompressor, so an enormous claim is refused before anything else."""
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    header["NAXIS"] = 3
    header["NAXIS1"], header["NAXIS2"], header["NAXIS3"] = 4000, 4000, 1000
    header["BITPIX"] = -32
    header.insert(0, ("SIMPLE", True))
    path = tmp_path / "enormous.fits.gz"
    path.write_bytes(gzip.compress(header.tostring().encode() + bytes(2880)))

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened for its data")

    monkeypatch.setattr("astropy.io.fits.open", no_open)
    with pytest.raises(CubeError, match=r"enormous\.fits\.gz: the header declares 4000 x 4000 x 1000"):
        read_cube(path)


# ----------------------------------------------------------------------------------------- errors
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fits"):
        read_cube(tmp_path / "nope.fits")


def test_not_fits(tmp_path):
    path = tmp_path / "text.fits"
    path.write_text("this is not a FITS file\n" * 200)
    with pytest.raises(ValueError, match=r"text\.fits is not a readable FITS file"):
        read_cube(path)


def test_truncated_file(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    path = write(tmp_path / "full.fits", header, cube_data())
    cut = tmp_path / "cut.fits"
    cut.write_bytes(path.read_bytes()[:4000])
    with pytest.raises(ValueError, match=r"cut\.fits is truncated.*download"):
        read_cube(cut)
    cut.write_bytes(path.read_bytes()[:1000])  # not even a whole header
    with pytest.raises(ValueError, match=r"cut\.fits is not a readable FITS file"):
        read_cube(cut)


def test_no_beam(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    path = write(tmp_path / "nobeam.fits", header, cube_data(), beam="none")
    with pytest.raises(ValueError, match=r"nobeam\.fits has no beam .*give bmaj, bmin, bpa in the sheet"):
        read_cube(path)


def test_frequency_axis_without_rest_frequency(tmp_path):
    header = build_header(spectral_cards("FREQ", 1.41e9, 1.0e5, "Hz"))
    path = write(tmp_path / "norest.fits", header, cube_data())
    with pytest.raises(ValueError, match=r"norest\.fits has a FREQ spectral axis but no rest frequency.*give restfreq"):
        read_cube(path)


def test_image_and_spectrum_are_refused(tmp_path):
    image = sky_header(NX, NY)
    add_beam(image)
    fits.PrimaryHDU(data=np.ones((NY, NX), np.float32), header=image).writeto(tmp_path / "mom0.fits")
    with pytest.raises(ValueError, match=r"mom0\.fits is a 2-D image, not a cube"):
        read_cube(tmp_path / "mom0.fits")
    spectrum = fits.Header()
    spectrum["CTYPE1"] = "VRAD"
    fits.PrimaryHDU(data=np.ones(NV, np.float32), header=spectrum).writeto(tmp_path / "spec.fits")
    with pytest.raises(ValueError, match=r"spec\.fits is a 1-D spectrum, not a cube"):
        read_cube(tmp_path / "spec.fits")


def test_non_celestial_axes_and_missing_spectral_axis(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    header["CTYPE1"] = "LINEAR"
    header["CTYPE2"] = "LINEAR"
    write(tmp_path / "linear.fits", header, cube_data())
    with pytest.raises(ValueError, match=r"linear\.fits has no pair of celestial axes.*RA---xxx and DEC--xxx"):
        read_cube(tmp_path / "linear.fits")
    header = build_header(spectral_cards("LINEAR", 1.0, 1.0, ""))
    write(tmp_path / "nospec.fits", header, cube_data())
    with pytest.raises(ValueError, match=r"nospec\.fits has no spectral axis.*FREQ, VRAD"):
        read_cube(tmp_path / "nospec.fits")


def test_all_blank_data(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    path = write(tmp_path / "blank.fits", header, np.full((NV, NY, NX), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"blank\.fits: every voxel is blank"):
        read_cube(path)


def test_unknown_unit(tmp_path):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    path = write(tmp_path / "unit.fits", header, cube_data(), unit="erg/s")
    with pytest.raises(ValueError, match=r"unit\.fits has BUNIT 'erg/s'.*Jy/beam, mJy/beam or K"):
        read_cube(path)


def test_max_voxels_is_checked_before_reading(tmp_path, monkeypatch):
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    path = write(tmp_path / "big.fits", header, cube_data())

    def no_data(*args, **kwargs):
        raise AssertionError("the data were read")

    monkeypatch.setattr("spectral_cube.SpectralCube.read", no_data)
    with pytest.raises(ValueError, match=r"big\.fits: the header declares 10 x 12 x 16 = 1.92e\+03 voxels.*max_voxels"):
        read_cube(path, max_voxels=1000)
    assert DEFAULT_MAX_VOXELS == 4e8


def test_errors_have_the_types_a_caller_can_catch(tmp_path):
    """Each kind of failure has its own type (kinms_core.errors), still a ValueError or FileNotFoundError."""
    with pytest.raises(MissingInputError):
        read_cube(tmp_path / "nope.fits")
    header = build_header(spectral_cards("VRAD", 1.0e6, 1.0e4, "m/s"))
    with pytest.raises(NoBeamError):
        read_cube(write(tmp_path / "nobeam.fits", header, cube_data(), beam="none"))
    with pytest.raises(NoBeamError, match="beam override"):
        read_cube(write(tmp_path / "beam.fits", header, cube_data()), beam=(0.0, 1.0, 0.0))
    with pytest.raises(CubeError):
        read_cube(write(tmp_path / "unit.fits", header, cube_data(), unit="erg/s"))
    freq = build_header(spectral_cards("FREQ", 1.41e9, 1.0e5, "Hz"))
    with pytest.raises(RestFrequencyError):
        read_cube(write(tmp_path / "norest.fits", freq, cube_data()))
    with pytest.raises(RestFrequencyError, match="restfreq must be a positive"):
        read_cube(tmp_path / "beam.fits", restfreq=-1.0)


# ----------------------------------------------------------------------------------------- observed cubes
# What each SOURCE.md says: file, shape (nv, ny, nx), channel 1 and last channel (radio km/s, or MHz for a FREQ
# axis), beam (arcsec, arcsec, deg; None: the header's is a placeholder), BUNIT, NaN voxels, rest frequency (Hz).
REAL_CUBES = {
    "ngc4324_co_carma": {
        "file": "NGC4324.fits",
        "shape": (21, 100, 100),
        "channels_kms": (1450.0, 1850.0),
        "beam": (1.30075740162e-03 * 3600, 1.06973131187e-03 * 3600, 15.5410995483),
        "bunit": "JY/BEAM",
        "nan": 0,
        "restfreq": 1.15271202e11,
    },
    "ngc4047_co_carma": {
        "file": "NGC4047.co.smo7msk.K.fits.gz",
        "shape": (44, 160, 160),
        "channels_kms": (2980.0, 3840.0),
        "beam": (1.94444449153e-03 * 3600, 1.94444449153e-03 * 3600, 45.0),
        "bunit": "K",
        "nan": 672860,
        "restfreq": 1.15271204e11,
    },
    "eso121g6_hi_atca": {
        "file": "eso121-g6.fits",
        "shape": (130, 64, 64),
        "channels_kms": (980.482359467, 980.482359467 + 129 * 3.29803622),
        "beam": (7.947223261e-03 * 3600, 6.09444500878e-03 * 3600, 14.3000011444),
        "bunit": "JY/BEAM",
        "nan": 0,
        "restfreq": 1.420405718410e09,  # HISTORY FREQ0
    },
    "wein069_hi_wsrt": {
        "file": "WEIN069.fits.gz",
        "shape": (83, 70, 134),
        "channels_mhz": (1408.803, 1405.600),
        "beam": None,
        "bunit": "JY/BEAM",
        "nan": 0,
        "restfreq": 1420405760.0,
    },
}
GIVEN_BEAM = (20.0, 15.0, 0.0)  # arbitrary: WEIN069's header holds a placeholder


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL_CUBES))
def test_every_observed_cube_reads_with_its_documented_axes(name):
    folder = real_data_folder()
    if folder is None:
        pytest.skip("no observed cubes (../shared/real beside the repository, or $KINMS_REAL_DATA)")
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(REAL_CUBES), "a cube without expectations"
    expected = REAL_CUBES[name]
    path = folder / name / expected["file"]
    if expected["beam"] is None:
        with pytest.raises(NoBeamError, match=r"placeholder beam \(BMAJ = -1.0, BMIN = -1.0.*--beam BMAJ BMIN BPA"):
            read_cube(path)
        cube = read_cube(path, beam=GIVEN_BEAM)
        assert cube.obspars.beam == GIVEN_BEAM
        assert cube.obspars.provenance.ignored_blank == -32768
    else:
        cube = read_cube(path)
        assert cube.obspars.beam == pytest.approx(expected["beam"], rel=1e-9)
    op = cube.obspars
    assert cube.shape == expected["shape"]
    assert op.restfreq == pytest.approx(expected["restfreq"], rel=1e-12)
    assert not any(op.provenance.flipped.values())
    if "channels_kms" in expected:  # velocity axes, radio convention (VELREF 257, or Miriad without VELREF)
        first, last = expected["channels_kms"]
        assert cube.velocities[0] == pytest.approx(first, abs=1e-6)
        assert cube.velocities[-1] == pytest.approx(last, abs=1e-6)
        assert (op.provenance.velocity_nonlinearity_kms or 0.0) == 0.0
        assert op.velocities[0] == pytest.approx(first, abs=1e-6)
    else:  # FREQ axis: channel 1 (highest frequency) is the lowest radio velocity; SOURCE.md rounds to 1 kHz
        first_mhz, last_mhz = expected["channels_mhz"]
        rest = expected["restfreq"]
        frequencies_mhz = rest * (1.0 - cube.velocities / C_KMS) / 1e6
        assert frequencies_mhz[0] == pytest.approx(first_mhz, abs=5e-4)
        assert frequencies_mhz[-1] == pytest.approx(last_mhz, abs=5e-4)
        assert cube.velocities[0] == pytest.approx(C_KMS * (1.0 - first_mhz * 1e6 / rest), abs=C_KMS * 5e2 / rest)
    if name == "ngc4324_co_carma":
        assert cube.velocities[0] == 1450.0  # exactly: CRVAL3 = 1450000 m/s read as radio velocity
    assert np.isnan(cube.data).sum() == expected["nan"]
    assert op.provenance.bunit_original == expected["bunit"]
    if expected["bunit"] == "K":
        centre = op.nv // 2
        freq = expected["restfreq"] * (1.0 - cube.velocities[centre] / C_KMS) * u.Hz
        omega = 2 * math.pi * (op.beam[0] * u.arcsec) * (op.beam[1] * u.arcsec) / (8 * math.log(2))
        jy_per_k = (1 * u.K).to(u.Jy, equivalencies=u.brightness_temperature(freq, beam_area=omega)).value
        assert op.provenance.unit_scale == pytest.approx(jy_per_k, rel=1e-6)
    else:
        assert op.provenance.unit_scale == 1.0
