"""Parameterised galaxies: named parameters (the catalogue's columns) mapped to a model cube.

A galaxy is a set of families, one per aspect (:class:`ModelSpec`); each family brings its parameters:

- geometry and kinematics, always: ``flux`` (Jy km/s), ``pa`` and ``inc`` (degrees), ``xc`` and ``yc`` (arcsec
  offsets of the kinematic centre from the cube's reference pixel along +x and +y pixel axes, as KinMS's phase
  centre), ``vsys`` (radio km/s, absolute) and ``sigma`` (gas dispersion, km/s; at the centre for a profile);
- surface brightness: ``exponential`` (``scalerad``), ``gaussian_ring`` (``ring_radius``, ``ring_width``),
  ``sersic`` (``reff``, the half-light radius, and ``sersic_n``), ``exponential_hole`` (``scalerad``,
  ``hole_radius``: no gas inside it), ``exponential_ring`` (``scalerad``, ``ring_radius``, ``ring_width`` and
  ``ring_fraction``, the ring's share of the flux) and ``data`` (no parameter: cloudlets fixed on the sky where the
  observed moment-0 map, deconvolved from the beam, has its emission; :mod:`kinms_core.surface`);
- rotation curve: ``arctan`` (``vflat`` km/s, ``rturn`` arcsec) and ``rings`` (circular velocity ``vrot_1 ..
  vrot_K`` in km/s at fixed radii, interpolated linearly, rising linearly from zero inside the first ring);
- warp: ``none``, ``linear`` (``pa_grad``, ``inc_grad``: degrees per arcsec of radius about the pivot radius
  ``ModelSpec.warp_radius``, so ``pa(r) = pa + pa_grad (r - warp_radius)``: ``pa`` and ``inc`` are the geometry
  where the gas is, the emission's half-light radius in a fit, not an extrapolation to the centre) or ``rings``
  (``dpa_k``, ``dinc_k``: degrees, the change of PA and inclination from the inner disc's ``pa`` and ``inc`` at the
  radii ``ModelSpec.warp_radii`` r_1..r_K after the first, r_0, where the warp starts; linear between them, flat
  inside r_0 and beyond r_K, as TiRiFiC's and 3D-Barolo's rings; a fit's ``auto`` radii are 1, 2 and 3 half-light
  radii);
- thickness: ``thin`` or ``exponential`` (``z0``, the exponential scale height in arcsec: a thick disc looks
  rounder than a thin one at the same inclination);
- dispersion: ``constant`` or ``linear`` (``sigma_grad``, km/s per arcsec: ``sigma(r) = max(sigma + sigma_grad r,
  0)``);
- non-circular motions: ``none``, ``radial`` (``vrad`` km/s at every radius, KinMS's ``pure_radial`` sign: the line
  of sight gets ``+vrad sin(theta) sin(inc)``, which is an inflow or an outflow depending on which side of the disc
  is nearer) or ``bisymmetric`` (``v2t``, ``v2r`` km/s and the bar angle ``phib`` in degrees, KinMS's
  ``bisymmetric_flow``, Spekkens & Sellwood 2007);
- asymmetry: ``none`` or ``lopsided`` (``m1_cos``, ``m1_sin``: the amplitudes of the surface brightness's m = 1
  mode, ``Sigma(r) (1 + m1_cos cos(theta) + m1_sin sin(theta))``, in the disc azimuth ``theta`` of the radial
  motions' term, 0 on the approaching half of the major axis: ``m1_cos > 0`` makes the approaching half brighter;
  TiRiFiC's ``SM1A``/``SM1P`` as Cartesian components, which have no wrap in phase and no singular point at zero
  amplitude). Most HI discs are lopsided (Richter & Sancisi 1994); fitted as symmetric, the light's excess on one
  side pulls the systemic velocity and the centre towards it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .model import DEFAULT_CLOUDS, Bisymmetric, CubeModel, SkyClouds
from .obspars import ObsPars

__all__ = [
    "AUTO_WARP_RADII",
    "ASYMMETRIES",
    "DISPERSIONS",
    "GEOMETRY_PARAMETERS",
    "HALF_LIGHT_PER_SCALE",
    "MOTIONS",
    "ROTATION_CURVES",
    "SURFACE_BRIGHTNESS",
    "THICKNESS",
    "WARPS",
    "GalaxyModel",
    "ModelSpec",
    "all_parameter_names",
    "dispersion_profile",
    "geometry_profile",
    "kinematic_centre",
    "phase_centre",
    "rotation_curve",
    "radius_grid",
    "unit_of",
]

GEOMETRY_PARAMETERS = ("flux", "pa", "inc", "xc", "yc", "vsys", "sigma")
#: Half-light radius of an exponential disc in scale lengths.
HALF_LIGHT_PER_SCALE = 1.678
SURFACE_BRIGHTNESS = {
    "exponential": ("scalerad",),
    "gaussian_ring": ("ring_radius", "ring_width"),
    "sersic": ("reff", "sersic_n"),
    "exponential_hole": ("scalerad", "hole_radius"),
    "exponential_ring": ("scalerad", "ring_radius", "ring_width", "ring_fraction"),
    "data": (),
}
ROTATION_CURVES = {"arctan": ("vflat", "rturn"), "rings": ()}
WARPS = {"none": (), "linear": ("pa_grad", "inc_grad"), "rings": ()}
#: A ring-wise warp's radii when the settings say ``auto``: multiples of the emission's half-light radius.
AUTO_WARP_RADII = (1.0, 2.0, 3.0)
THICKNESS = {"thin": (), "exponential": ("z0",)}
DISPERSIONS = {"constant": (), "linear": ("sigma_grad",)}
MOTIONS = {"none": (), "radial": ("vrad",), "bisymmetric": ("v2t", "v2r", "phib")}
ASYMMETRIES = {"none": (), "lopsided": ("m1_cos", "m1_sin")}

UNITS = {
    "flux": "Jy km/s",
    "pa": "deg",
    "inc": "deg",
    "xc": "arcsec",
    "yc": "arcsec",
    "vsys": "km/s",
    "sigma": "km/s",
    "scalerad": "arcsec",
    "ring_radius": "arcsec",
    "ring_width": "arcsec",
    "reff": "arcsec",
    "sersic_n": "",
    "hole_radius": "arcsec",
    "ring_fraction": "",
    "vflat": "km/s",
    "rturn": "arcsec",
    "z0": "arcsec",
    "pa_grad": "deg/arcsec",
    "inc_grad": "deg/arcsec",
    "warp_radius": "arcsec",
    "sigma_grad": "km/s/arcsec",
    "vrad": "km/s",
    "v2t": "km/s",
    "v2r": "km/s",
    "phib": "deg",
    "m1_cos": "",
    "m1_sin": "",
}


def unit_of(name: str) -> str:
    """Unit of a parameter (``vrot_k`` are km/s, ``dpa_k`` and ``dinc_k`` degrees)."""
    if name.startswith("vrot_"):
        return "km/s"
    if name.startswith(("dpa_", "dinc_")):
        return "deg"
    return UNITS[name]


def all_parameter_names() -> tuple[str, ...]:
    """Every parameter name of every family (``vrot_k`` for rings not included: they are numbered)."""
    families = (SURFACE_BRIGHTNESS, ROTATION_CURVES, WARPS, THICKNESS, DISPERSIONS, MOTIONS, ASYMMETRIES)
    names = list(GEOMETRY_PARAMETERS)
    for family in families:
        for parameters in family.values():
            names += [n for n in parameters if n not in names]
    return tuple(names)


_FAMILIES = {
    "surface_brightness": SURFACE_BRIGHTNESS,
    "rotation_curve": ROTATION_CURVES,
    "warp": WARPS,
    "thickness": THICKNESS,
    "dispersion": DISPERSIONS,
    "motions": MOTIONS,
    "asymmetry": ASYMMETRIES,
}


@dataclass(frozen=True)
class ModelSpec:
    """Which families make the galaxy, the ring radii of a ``rings`` rotation curve (arcsec), the pivot radius of a
    linear warp and the radii of a ring-wise warp (arcsec; None until set: a fit sets them from the emission's
    half-light radius, :meth:`FitSettings.for_data <kinms_core.settings.FitSettings.for_data>`)."""

    surface_brightness: str = "exponential"
    rotation_curve: str = "arctan"
    ring_radii: tuple[float, ...] = ()
    warp: str = "none"
    thickness: str = "thin"
    dispersion: str = "constant"
    motions: str = "none"
    warp_radius: float | None = None
    warp_radii: tuple[float, ...] | None = None
    asymmetry: str = "none"

    def __post_init__(self) -> None:
        for key, family in _FAMILIES.items():
            if getattr(self, key) not in family:
                raise ValueError(f"model.{key} {getattr(self, key)!r} is unknown; choose one of {sorted(family)}")
        radii = tuple(float(r) for r in self.ring_radii)
        if self.rotation_curve == "rings":
            if len(radii) < 2 or any(r <= 0 for r in radii) or any(np.diff(radii) <= 0):
                raise ValueError("model.ring_radii must be at least two increasing positive radii (arcsec) for rings")
        if self.surface_brightness == "data" and (self.warp != "none" or self.thickness != "thin"):
            raise ValueError(
                "model.surface_brightness data cannot go with a warp or a thickness: sky-fixed cloudlets are "
                "deprojected into one thin plane"
            )
        if self.surface_brightness == "data" and self.asymmetry != "none":
            raise ValueError(
                "model.surface_brightness data cannot go with an asymmetry: the data's map already holds it"
            )
        if self.warp_radius is not None and not (math.isfinite(self.warp_radius) and self.warp_radius >= 0):
            raise ValueError(f"model.warp_radius must be a radius of 0 arcsec or more, got {self.warp_radius!r}")
        object.__setattr__(self, "ring_radii", radii)
        if self.warp_radii is not None:
            warp_radii = tuple(float(r) for r in self.warp_radii)
            if len(warp_radii) < 2 or warp_radii[0] < 0 or any(np.diff(warp_radii) <= 0):
                raise ValueError("model.warp_radii must be at least two increasing radii of 0 arcsec or more")
            object.__setattr__(self, "warp_radii", warp_radii)

    def record(self) -> dict[str, object]:
        """The spec as JSON-ready values (summary.json, the chain's fingerprint); a warp's radii only for that warp
        and the asymmetry only when there is one, so that the records of other fits are those of releases without
        them (their chains still resume)."""
        out = asdict(self)
        if self.asymmetry == "none":
            del out["asymmetry"]
        if self.warp != "linear":
            del out["warp_radius"]
        if self.warp != "rings":
            del out["warp_radii"]
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> ModelSpec:
        """The spec of a :meth:`record`; a warp recorded without a pivot was fitted before the pivot existed, about
        the centre."""
        record = dict(record)
        if record.get("warp", "none") == "linear":
            record.setdefault("warp_radius", 0.0)
        return cls(**record)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every parameter of the galaxy, in a fixed order."""
        rc = ROTATION_CURVES[self.rotation_curve]
        if self.rotation_curve == "rings":
            rc = tuple(f"vrot_{k + 1}" for k in range(len(self.ring_radii)))
        warp = WARPS[self.warp]
        if self.warp == "rings":
            rings = range(1, len(self.warp_radii or AUTO_WARP_RADII))
            warp = tuple(f"dpa_{k}" for k in rings) + tuple(f"dinc_{k}" for k in rings)
        extra = warp + THICKNESS[self.thickness] + DISPERSIONS[self.dispersion] + MOTIONS[self.motions]
        extra += ASYMMETRIES[self.asymmetry]
        return GEOMETRY_PARAMETERS + SURFACE_BRIGHTNESS[self.surface_brightness] + rc + extra

    @property
    def label(self) -> str:
        """A short name of the families that differ from the default, e.g. ``data+radial`` or ``warp+sigma_linear``
        (``default`` when none does)."""
        defaults = ModelSpec()
        names = {
            ("warp", "linear"): "warp",
            ("warp", "rings"): "warp_rings",
            ("thickness", "exponential"): "thick",
            ("dispersion", "linear"): "sigma_linear",
        }
        parts = [
            names.get((key, getattr(self, key)), getattr(self, key))
            for key in _FAMILIES
            if getattr(self, key) != getattr(defaults, key)
        ]
        return "+".join(parts) or "default"


def radius_grid(obspars: ObsPars, max_offset: float = 0.0) -> np.ndarray:
    """Radius grid (arcsec) for profiles: a third of a pixel apart (the tutorial's oversampling), out to the cube's
    half-diagonal plus the largest centre offset, and no further (a longer grid only slows interpolation)."""
    step = obspars.cellsize / 3.0
    rmax = 0.5 * math.hypot(obspars.nx, obspars.ny) * obspars.cellsize + abs(max_offset) + 2 * step
    return np.arange(0.0, rmax, step)


def phase_centre(obspars: ObsPars, xc: float, yc: float) -> tuple[float, float]:
    """KinMS's phase centre (arcsec from the model's centre pixel) of a galaxy at ``xc, yc`` (arcsec from the
    reference pixel, the fitted parameters)."""
    cx, cy = obspars.centre_pixel
    x_ref, y_ref = obspars.reference_pixel
    return xc + (x_ref - cx) * obspars.cellsize, yc + (y_ref - cy) * obspars.cellsize


def kinematic_centre(obspars: ObsPars, values: Mapping[str, float]) -> tuple[float, float]:
    """0-based pixel coordinates ``(x, y)`` of the kinematic centre of parameter ``values`` (``xc``, ``yc``: arcsec
    from the reference pixel; 0 when absent)."""
    x_ref, y_ref = obspars.reference_pixel
    return x_ref + values.get("xc", 0.0) / obspars.cellsize, y_ref + values.get("yc", 0.0) / obspars.cellsize


def _sersic_b(n: float) -> float:
    """``b_n`` of a Sersic profile, so that ``reff`` holds half the light (Ciotti & Bertin 1999, to O(1/n^2))."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def _shell(profile: np.ndarray, r: np.ndarray) -> float:
    """``integral 2 pi r profile dr`` on the grid (the flux of a surface-brightness profile)."""
    return float(np.trapezoid(2.0 * np.pi * r * profile, r))


def surface_profile(kind: str, p: Mapping[str, float], r: np.ndarray) -> np.ndarray:
    """The surface brightness of family ``kind`` on radii ``r`` (arbitrary scale)."""
    if kind == "exponential":
        return np.exp(-r / max(p["scalerad"], 1e-6))
    if kind == "gaussian_ring":
        return np.exp(-0.5 * ((r - p["ring_radius"]) / max(p["ring_width"], 1e-6)) ** 2)
    if kind == "sersic":
        n = max(p["sersic_n"], 0.05)
        return np.exp(-_sersic_b(n) * ((r / max(p["reff"], 1e-6)) ** (1.0 / n) - 1.0))
    if kind == "exponential_hole":
        return np.where(r >= p["hole_radius"], np.exp(-r / max(p["scalerad"], 1e-6)), 0.0)
    if kind == "exponential_ring":
        disc = surface_profile("exponential", p, r)
        ring = surface_profile("gaussian_ring", p, r)
        fraction = min(max(p["ring_fraction"], 0.0), 1.0)
        # each component normalised to its share of the flux
        disc_flux, ring_flux = _shell(disc, r), _shell(ring, r)
        out = np.zeros_like(r)
        if disc_flux > 0:
            out += (1.0 - fraction) * disc / disc_flux
        if ring_flux > 0:
            out += fraction * ring / ring_flux
        return out
    raise ValueError(f"surface brightness {kind!r} has no radial profile")


def rotation_curve(spec: ModelSpec, p: Mapping[str, float], r: np.ndarray) -> np.ndarray:
    """Circular velocity (km/s) of the model's rotation-curve family at radii ``r`` (arcsec)."""
    r = np.asarray(r, dtype=float)
    if spec.rotation_curve == "arctan":
        return p["vflat"] * 2.0 / np.pi * np.arctan(r / max(p["rturn"], 1e-6))
    radii = np.concatenate([[0.0], spec.ring_radii])
    speeds = np.concatenate([[0.0], [p[f"vrot_{k + 1}"] for k in range(len(spec.ring_radii))]])
    return np.interp(r, radii, speeds)


def geometry_profile(spec: ModelSpec, p: Mapping[str, float], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position angle and inclination (degrees) at radii ``r``: constant unless warped (about ``spec.warp_radius``);
    the inclination is kept within [0, 90]."""
    r = np.asarray(r, dtype=float)
    if spec.warp == "linear":
        if spec.warp_radius is None:
            raise ValueError("a warped ModelSpec needs warp_radius, the radius (arcsec) where pa and inc hold")
        dr = r - spec.warp_radius
        return p["pa"] + p["pa_grad"] * dr, np.clip(p["inc"] + p["inc_grad"] * dr, 0.0, 90.0)
    if spec.warp == "rings":
        if spec.warp_radii is None:
            raise ValueError("a ring-wise warped ModelSpec needs warp_radii, the radii (arcsec) of its rings")
        rings = range(1, len(spec.warp_radii))
        pa = p["pa"] + np.interp(r, spec.warp_radii, [0.0, *(p[f"dpa_{k}"] for k in rings)])
        inc = p["inc"] + np.interp(r, spec.warp_radii, [0.0, *(p[f"dinc_{k}"] for k in rings)])
        return pa, np.clip(inc, 0.0, 90.0)
    return np.full(r.shape, float(p["pa"])), np.full(r.shape, float(p["inc"]))


def dispersion_profile(spec: ModelSpec, p: Mapping[str, float], r: np.ndarray) -> np.ndarray:
    """Gas velocity dispersion (km/s) at radii ``r``, never negative."""
    r = np.asarray(r, dtype=float)
    grad = p["sigma_grad"] if spec.dispersion == "linear" else 0.0
    return np.clip(p["sigma"] + grad * r, 0.0, None)


class GalaxyModel:
    """Named parameters -> model cube on a fixed grid, reusing one :class:`CubeModel`.

    Parameters
    ----------
    obspars
        Grid of the (trimmed) data cube.
    spec
        Surface-brightness and rotation-curve families.
    n_clouds, seed, threads, planner_effort
        Passed to :class:`CubeModel`.
    max_offset
        Largest centre offset (arcsec) the fit may try; extends the radius grid.
    surface
        ``(ny, nx)`` map of the emission for the ``data`` surface brightness (:func:`kinms_core.surface.surface_map`).
    """

    def __init__(
        self,
        obspars: ObsPars,
        spec: ModelSpec,
        *,
        n_clouds: int = DEFAULT_CLOUDS,
        seed: int = 0,
        threads: int = 1,
        max_offset: float = 0.0,
        surface: np.ndarray | None = None,
        planner_effort: str = "FFTW_MEASURE",
    ) -> None:
        self.obspars = obspars
        self.spec = spec
        self.names = spec.parameter_names
        self.radius = radius_grid(obspars, max_offset)
        self.cube_model = CubeModel(
            obspars, n_clouds=n_clouds, seed=seed, threads=threads, planner_effort=planner_effort
        )
        self.sky_clouds: SkyClouds | None = None
        if spec.surface_brightness == "data":
            if surface is None:
                raise ValueError("model.surface_brightness data needs the emission's map (surface=)")
            self.sky_clouds = SkyClouds.from_map(surface, obspars, self.cube_model.n_clouds, seed=seed + 1)
        self._velocity_zero = obspars.centre_velocity

    def rotation(self, p: Mapping[str, float], r: np.ndarray | None = None) -> np.ndarray:
        """Circular velocity (km/s) at radii ``r`` (default :attr:`radius`)."""
        return rotation_curve(self.spec, p, self.radius if r is None else r)

    def geometry(self, p: Mapping[str, float], r: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Position angle and inclination (degrees) at radii ``r`` (default :attr:`radius`)."""
        return geometry_profile(self.spec, p, self.radius if r is None else r)

    def dispersion(self, p: Mapping[str, float], r: np.ndarray | None = None) -> np.ndarray:
        """Gas velocity dispersion (km/s) at radii ``r`` (default :attr:`radius`)."""
        return dispersion_profile(self.spec, p, self.radius if r is None else r)

    def profiles(self, p: Mapping[str, float]) -> tuple[np.ndarray | None, np.ndarray]:
        """Surface brightness (None for ``data``) and circular velocity on :attr:`radius`."""
        sb = (
            None
            if self.spec.surface_brightness == "data"
            else surface_profile(self.spec.surface_brightness, p, self.radius)
        )
        return sb, self.rotation(p)

    def _motions(self, p: Mapping[str, float]) -> dict[str, object]:
        if self.spec.motions == "radial":
            return {"radial_vel": p["vrad"]}
        if self.spec.motions == "bisymmetric":
            return {"bisymmetric": Bisymmetric(v2t=p["v2t"], v2r=p["v2r"], phib=p["phib"])}
        return {}

    def _asymmetry(self, p: Mapping[str, float]) -> dict[str, object]:
        return {"m1": (p["m1_cos"], p["m1_sin"])} if self.spec.asymmetry == "lopsided" else {}

    def cube(self, p: Mapping[str, float], *, clean: bool = False) -> np.ndarray:
        """Model cube ``(nv, ny, nx)`` for parameter values ``p`` (every name in :attr:`names`)."""
        missing = [name for name in self.names if name not in p]
        if missing:
            raise ValueError(f"missing parameter values {missing}")
        sb, vel = self.profiles(p)
        sigma = self.dispersion(p)
        common = dict(
            vel_rad=self.radius,
            vel_prof=vel,
            int_flux=p["flux"],
            gas_sigma=sigma if self.spec.dispersion != "constant" else p["sigma"],
            phase_cent=phase_centre(self.obspars, p["xc"], p["yc"]),
            v_offset=p["vsys"] - self._velocity_zero,
            clean=clean,
            **self._motions(p),
        )
        if self.sky_clouds is not None:
            return self.cube_model.sky_cube(self.sky_clouds, inc=p["inc"], pa=p["pa"], **common)
        pa, inc = self.geometry(p) if self.spec.warp != "none" else (p["pa"], p["inc"])
        thick = p["z0"] if self.spec.thickness == "exponential" else 0.0
        return self.cube_model.cube(
            inc=inc, pa=pa, sb_rad=self.radius, sb_prof=sb, disk_thick=thick, **common, **self._asymmetry(p)
        )

    def values(self, theta: Sequence[float]) -> dict[str, float]:
        """Map a vector in :attr:`names` order to a dict."""
        return dict(zip(self.names, (float(t) for t in theta), strict=True))
