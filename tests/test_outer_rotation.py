"""The rotation at the emission's radius: the radius along the major axis, and the quantity's own error terms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kinms_core.obspars import ObsPars
from kinms_core.outer_rotation import FLUX_SHARE, emission_radius, outer_rotation, quantities, rotation_band
from kinms_core.parametric import ModelSpec

OP = ObsPars(nx=32, ny=32, nv=4, cellsize=2.0, dv=20.0, beam=(6.0, 5.0, 0.0), v_start=900.0)


def _line_cube(direction: tuple[int, int], half_length: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Unit flux in one channel on ``2 half_length + 1`` pixels along ``direction`` (x, y) through the reference
    pixel moved by ``shift`` pixels."""
    cube = np.zeros(OP.shape)
    x0, y0 = (int(c) + s for c, s in zip(OP.reference_pixel, shift, strict=True))
    for k in range(-half_length, half_length + 1):
        cube[1, y0 + k * direction[1], x0 + k * direction[0]] = 1.0
    return cube


def test_emission_radius_holds_the_flux_share_along_the_major_axis():
    # 21 unit pixels at 0, 1, 1, ..., 10, 10 pixels: 90% of the flux (18.9) is reached at 9 pixels, 18 arcsec
    north = _line_cube((0, 1), 10)
    assert emission_radius(north, None, OP, {"pa": 0.0}) == pytest.approx(18.0)
    # the receding side along PA 90 deg is -x; the same line there, and about a fitted centre away from the reference
    east = _line_cube((-1, 0), 10, shift=(3, -2))
    assert emission_radius(east, None, OP, {"pa": 90.0, "xc": 6.0, "yc": -4.0}) == pytest.approx(18.0)
    # flux on the minor axis is at no distance along the major one, however far out
    assert emission_radius(north, None, OP, {"pa": 90.0}) == pytest.approx(0.0)
    # only the mask's voxels count, and no positive flux gives no radius
    inner = np.zeros(OP.shape, dtype=bool)
    inner[:, :, :] = True
    inner[:, : int(OP.reference_pixel[1]) - 5, :] = False
    inner[:, int(OP.reference_pixel[1]) + 6 :, :] = False
    assert emission_radius(north, inner, OP, {"pa": 0.0}) == pytest.approx(10.0)
    assert math.isnan(emission_radius(-north, None, OP, {"pa": 0.0}))
    assert FLUX_SHARE == pytest.approx(0.9)


def test_quantities_follow_the_rotation_curve_and_the_inclination_at_the_radius():
    values = {"vflat": 200.0, "rturn": 5.0, "inc": 30.0, "pa": 10.0}
    v, vsini = quantities(ModelSpec(), values, 5.0)
    assert v == pytest.approx(100.0) and vsini == pytest.approx(50.0)
    warped = ModelSpec(warp="linear", warp_radius=10.0)
    _, vsini = quantities(warped, {**values, "pa_grad": 0.0, "inc_grad": -2.0}, 5.0)
    assert vsini == pytest.approx(100.0 * math.sin(math.radians(40.0)))
    rings = ModelSpec(rotation_curve="rings", ring_radii=(4.0, 8.0))
    v, _ = quantities(rings, {"vrot_1": 100.0, "vrot_2": 140.0, "inc": 90.0, "pa": 0.0}, 6.0)
    assert v == pytest.approx(120.0)


def _samples(rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    """inc, vflat and rturn drawn with vflat sin(inc) about constant: the degeneracy of a rising curve."""
    inc = rng.normal(50.0, 3.0, n)
    vflat = 150.0 / np.sin(np.radians(inc)) + rng.normal(0.0, 2.0, n)
    return np.column_stack([inc, vflat, rng.normal(4.0, 0.1, n)])


def test_family_and_side_terms_are_those_of_the_quantity_itself():
    rng = np.random.default_rng(1)
    names = ["inc", "vflat", "rturn"]
    samples = _samples(rng)
    best = {"inc": 50.0, "vflat": 150.0 / math.sin(math.radians(50.0)), "rturn": 4.0, "pa": 0.0}
    radius = 8.0
    plain = outer_rotation(ModelSpec(), samples, names, {"pa": 0.0}, radius, best=best)
    v_best, vsini_best = quantities(ModelSpec(), best, radius)
    assert plain["radius"] == radius and plain["v"]["sides"] == 0.0 and plain["v"]["families"] == 0.0
    assert plain["v"]["median"] == pytest.approx(v_best, rel=0.01)
    assert plain["vsini"]["median"] == pytest.approx(vsini_best, rel=0.01)
    # a thick-disc family: less inclined and faster, with the same v sin i; half the weight
    thick = {"inc": 40.0, "vflat": 150.0 / math.sin(math.radians(40.0)), "z0": 1.0}
    families = {"best": {"thick": thick}, "weights": {"fit": 0.5, "thick": 0.5}}
    # the sides: the receding one 10 km/s faster at the same inclination
    sides = {
        "receding": {**best, "vflat": best["vflat"] + 10.0},
        "approaching": {**best, "vflat": best["vflat"] - 10.0},
    }
    wide = outer_rotation(ModelSpec(), samples, names, {"pa": 0.0}, radius, best=best, sides=sides, families=families)
    v_thick, _ = quantities(ModelSpec(), {**best, **thick}, radius)
    assert wide["v"]["families"] == pytest.approx(math.sqrt(0.5) * abs(v_thick - v_best))
    assert wide["vsini"]["families"] == pytest.approx(0.0, abs=1e-9)
    assert wide["v"]["sides"] == pytest.approx(10.0 * 2.0 / math.pi * math.atan(radius / 4.0))
    # each interval gains its terms in quadrature about the same median
    for key in ("v", "vsini"):
        width = 0.5 * (plain[key]["p84"] - plain[key]["p16"])
        extra = math.hypot(wide[key]["sides"], wide[key]["families"])
        assert 0.5 * (wide[key]["p84"] - wide[key]["p16"]) == pytest.approx(math.hypot(width, extra), rel=1e-6)
        assert wide[key]["median"] == pytest.approx(plain[key]["median"])
    # the quantity's own terms are narrower for v sin i than adding inc's and vflat's terms apart would make them
    assert wide["vsini"]["p84"] - wide["vsini"]["p16"] < 0.5 * (wide["v"]["p84"] - wide["v"]["p16"])


def test_rotation_band_widens_each_radius_by_the_velocity_s_own_terms():
    rng = np.random.default_rng(3)
    names = ["inc", "vflat", "rturn"]
    samples = _samples(rng)
    best = {"inc": 50.0, "vflat": 150.0 / math.sin(math.radians(50.0)), "rturn": 4.0, "pa": 0.0}
    radii = np.array([0.0, 2.0, 8.0, 30.0])
    plain = rotation_band(ModelSpec(), samples, names, {"pa": 0.0}, radii, best=best)
    curves = np.array(
        [
            quantities(ModelSpec(), {"pa": 0.0, **dict(zip(names, row, strict=True))}, r)[0]
            for row in samples
            for r in radii
        ]
    )
    p16, median, p84 = np.percentile(curves.reshape(len(samples), radii.size), [16.0, 50.0, 84.0], axis=0)
    assert plain["radius"] == radii.tolist()
    assert np.allclose(plain["median"], median) and np.allclose(plain["p16"], p16) and np.allclose(plain["p84"], p84)
    # a family that turns over later to the same vflat (rturn 8 instead of 4), with a quarter of the weight, widens
    # each radius by sqrt(w) times its own difference there: most where the curves part, nothing at the centre
    late = {"rturn": 8.0}
    families = {"best": {"late": late}, "weights": {"fit": 0.75, "late": 0.25}}
    wide = rotation_band(ModelSpec(), samples, names, {"pa": 0.0}, radii, best=best, families=families)
    for k, radius in enumerate(radii):
        own = 0.5 * (plain["p84"][k] - plain["p16"][k])
        shift = quantities(ModelSpec(), {**best, **late}, radius)[0] - quantities(ModelSpec(), best, radius)[0]
        expected = math.hypot(own, 0.5 * shift)
        assert 0.5 * (wide["p84"][k] - wide["p16"][k]) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    # the same radius as outer_rotation gives the same velocity interval
    outer = outer_rotation(ModelSpec(), samples, names, {"pa": 0.0}, 8.0, best=best, families=families)
    assert [wide["p16"][2], wide["median"][2], wide["p84"][2]] == pytest.approx(
        [outer["v"]["p16"], outer["v"]["median"], outer["v"]["p84"]]
    )
