"""Synthetic 360° scenes: sampling a scene graph and rendering it by true spherical geometry.

A scene is a background (``outdoor``: sky over ground; ``room``: a box with walls, floor and
ceiling) plus 2-3 flat coloured objects (disc, ring, square, triangle, star). An object sits at
``(yaw, pitch)`` with an angular circumradius ``size_deg``; its shape is defined on the plane
tangent to the sphere at its centre, so it looks undistorted to a camera looking at it and
bends correctly in the ERP (near the poles, across the ±180° seam).

Rendering is vectorised torch: for each ERP pixel direction ``d`` (conventions of
:mod:`panollava.geometry.sphere`) and object centre ``c`` with tangent axes ``(e_right, e_up)``,
the gnomonic point ``p = d / (d·c) - c`` has tangent coordinates ``(p·e_right, p·e_up)``,
which are tested against the shape (only rows within the object's latitude band are touched).
Everything is deterministic for a seed (private generators, no global RNG).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache

import torch

from panollava.data.augment import sample_generator
from panollava.geometry import erp_to_lonlat, lonlat_to_xyz

__all__ = [
    "COLORS",
    "MAX_OBJECT_SCALE",
    "POLE_DEG",
    "SHAPES",
    "SUBSETS",
    "SceneObject",
    "SceneOptions",
    "SynthScene",
    "check_scene_options",
    "render_scene",
    "render_scene_hwc",
    "sample_scene",
]

COLORS: dict[str, tuple[int, int, int]] = {  # fixed order = the order captions list colours in
    "red": (215, 35, 35),
    "orange": (240, 125, 20),
    "yellow": (240, 210, 30),
    "green": (25, 165, 50),
    "blue": (35, 70, 215),
    "purple": (135, 45, 175),
    "black": (25, 25, 25),
}
SHAPES = ("disc", "ring", "square", "triangle", "star")  # fixed order for captions
SKIES = {"clear": (135, 185, 235), "cloudy": (165, 168, 172), "sunset": (230, 165, 160)}
GROUNDS = {"grass": (110, 135, 80), "sand": (205, 185, 140), "snow": (232, 234, 238)}
WALLS = {"white": (228, 228, 222), "beige": (212, 192, 158), "gray": (150, 150, 152)}
FLOORS = {"brown": (115, 78, 48), "gray": (88, 88, 94), "green": (70, 105, 80)}
CEILING = (238, 238, 235)
SMALL_DEG = 8.0  # objects with a smaller angular radius are "small"
POLE_DEG = 60.0  # objects centred at |pitch| >= this are "polar" (ERP rows stretched >= 2x)
SUBSETS = ("seam", "pole", "small")  # object subsets of the grounded metrics and `--test-subset`
SEAM_SHARE = 0.35  # default share of scenes with an object across the ±180° seam
SMALL_SHARE = 0.3  # default share of small objects (angular radius 4-7°)
MAX_OBJECT_SCALE = 2.0  # radii up to 44°: three objects still fit apart on the sphere
_ROOM_FLOOR, _ROOM_CEILING = -0.6, 0.8  # box room: walls at |x|, |z| = 1, camera at the origin


@dataclass(frozen=True)
class SceneObject:
    """One object: angles in degrees (``size_deg`` = angular circumradius)."""

    shape: str
    color: str
    yaw_deg: float
    pitch_deg: float
    size_deg: float
    rotation_deg: float = 0.0

    @property
    def small(self) -> bool:
        return self.size_deg < SMALL_DEG

    @property
    def pole(self) -> bool:
        """Centred within ``90 - POLE_DEG`` degrees of a pole."""
        return abs(self.pitch_deg) >= POLE_DEG

    @property
    def seam(self) -> bool:
        """The object's circumscribed cap crosses the ±180° meridian (the ERP's left/right edge).

        Spherical distance from the centre to that half-meridian is
        ``asin(cos(pitch)·|sin(yaw - 180°)|)`` when the centre faces it (``|yaw - 180°| < 90°``);
        a cap holding a pole crosses every meridian.
        """
        if abs(self.pitch_deg) + self.size_deg >= 90.0:
            return True
        off = math.radians(self.yaw_deg % 360.0 - 180.0)
        if abs(off) >= math.pi / 2:
            return False
        reach = math.cos(math.radians(self.pitch_deg)) * abs(math.sin(off))
        return reach < math.sin(math.radians(self.size_deg))

    def in_subset(self, subset: str) -> bool:
        """Membership in one of :data:`SUBSETS`."""
        if subset not in SUBSETS:
            raise ValueError(f"unknown object subset {subset!r}; expected one of {SUBSETS}")
        return bool(getattr(self, subset))


@dataclass(frozen=True)
class SynthScene:
    """A scene graph: background kind and colours, objects (the captions' ground truth)."""

    kind: str  # "outdoor" or "room"
    sky: str | None = None
    ground: str | None = None
    wall: str | None = None
    floor: str | None = None
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        objects = [asdict(o) | {s: o.in_subset(s) for s in SUBSETS} for o in self.objects]
        return asdict(self) | {"objects": objects}

    @classmethod
    def from_json(cls, entry: dict) -> SynthScene:
        """Inverse of :meth:`to_json` (extra keys such as ``url`` or the subset flags ignored)."""
        names = {f for f in SceneObject.__dataclass_fields__}
        objects = tuple(
            SceneObject(**{k: v for k, v in o.items() if k in names}) for o in entry["objects"]
        )
        return cls(
            entry["kind"],
            sky=entry.get("sky"),
            ground=entry.get("ground"),
            wall=entry.get("wall"),
            floor=entry.get("floor"),
            objects=objects,
        )


def _angular_distance_deg(a: SceneObject, b: SceneObject) -> float:
    va = lonlat_to_xyz(
        torch.tensor(math.radians(a.yaw_deg)), torch.tensor(math.radians(a.pitch_deg))
    )
    vb = lonlat_to_xyz(
        torch.tensor(math.radians(b.yaw_deg)), torch.tensor(math.radians(b.pitch_deg))
    )
    return math.degrees(math.acos(max(-1.0, min(1.0, float((va * vb).sum())))))


def _draw_object(
    rng: random.Random,
    color: str,
    straddle: bool,
    polar: bool = False,
    small: bool = False,
    scale: float = 1.0,
    small_share: float = SMALL_SHARE,
) -> SceneObject:
    """One object; ``straddle``: across the seam, ``polar``: ``|pitch|`` in ``[POLE_DEG + 2,
    80]``, ``small``: forced small, ``scale``: factor on the radius of the objects that are not
    small (small ones stay small), ``small_share``: chance of a small object. The draws of a
    plain object never change (determinism): the options only move thresholds."""
    small = rng.random() < small_share or small
    size = rng.uniform(4.0, 7.0) if small else scale * rng.uniform(10.0, 22.0)
    yaw = rng.uniform(-180.0, 180.0)
    if straddle:  # centre within half a radius of the seam: the object crosses it
        yaw = math.copysign(180.0 - rng.uniform(0.0, 0.5 * size), rng.uniform(-1, 1))
    shape = rng.choice(SHAPES)
    pitch = rng.uniform(-35.0, 45.0)
    if polar:
        pitch = math.copysign(rng.uniform(POLE_DEG + 2.0, 80.0), rng.uniform(-1, 1))
    return SceneObject(
        shape=shape,
        color=color,
        yaw_deg=round(yaw, 2),
        pitch_deg=round(pitch, 2),
        size_deg=round(size, 2),
        rotation_deg=round(rng.uniform(-20.0, 20.0), 2),
    )


def check_scene_options(
    seam_share: float,
    pole_share: float,
    force: str | None,
    object_scale: float = 1.0,
    small_share: float = SMALL_SHARE,
) -> None:
    """Raise ``ValueError`` naming the scene option that is out of range."""
    shares = (("seam_share", seam_share), ("pole_share", pole_share), ("small_share", small_share))
    for name, share in shares:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    if not 1.0 <= object_scale <= MAX_OBJECT_SCALE:
        raise ValueError(
            f"object_scale must be in [1, {MAX_OBJECT_SCALE}] (larger objects no longer fit "
            f"three to a panorama), got {object_scale}"
        )
    if force is not None and force not in SUBSETS:
        raise ValueError(f"unknown subset {force!r}; expected one of {SUBSETS}")


def sample_scene(
    seed: int,
    index: int,
    *,
    seam_share: float = SEAM_SHARE,
    pole_share: float = 0.0,
    force: str | None = None,
    object_scale: float = 1.0,
    small_share: float = SMALL_SHARE,
) -> SynthScene:
    """The scene of panorama ``index`` for ``seed`` (independent of how many are generated).

    Objects get distinct colours, never overlap (centres apart by more than the sum of their
    radii plus a margin). ``seam_share`` of the scenes (in expectation) get an object across the
    ±180° seam and ``pole_share`` an object near a pole (``|pitch| >= POLE_DEG``); ``force``
    (one of :data:`SUBSETS`) gives this scene such an object for sure. ``object_scale``
    multiplies the radius of the objects that are not small (``10-22°`` by default);
    ``small_share`` is the chance of each object being small. The defaults draw exactly the
    scenes of earlier versions.
    """
    check_scene_options(seam_share, pole_share, force, object_scale, small_share)
    rng = random.Random(
        int(torch.randint(0, 2**62, (1,), generator=sample_generator(seed, -1, index)))
    )
    count = rng.choice((2, 3, 3))
    colors = rng.sample(list(COLORS), count)
    objects: list[SceneObject] = []
    straddle = rng.random() < seam_share or force == "seam"
    polar = (pole_share > 0 and rng.random() < pole_share) or force == "pole"
    polar_k = 1 if straddle else 0  # the seam object is object 0, the polar one the next
    for k, color in enumerate(colors):
        forced = (straddle and k == 0) or (polar and k == polar_k) or (force == "small" and k == 0)
        for _ in range(100):
            obj = _draw_object(
                rng,
                color,
                straddle and k == 0,
                polar and k == polar_k,
                force == "small" and k == 0,
                object_scale,
                small_share,
            )
            if all(
                _angular_distance_deg(obj, o) > 1.15 * (obj.size_deg + o.size_deg) + 3.0
                for o in objects
            ):
                objects.append(obj)
                break
        else:
            if forced:  # never observed; a requested object must not vanish silently
                raise RuntimeError(f"could not place object {k} of scene {index} (seed {seed})")
    if len(objects) < 2:  # never observed; fail loudly rather than emit an odd scene
        raise RuntimeError(f"could not place two objects in scene {index} (seed {seed})")
    if rng.random() < 0.5:
        return SynthScene(
            "outdoor",
            sky=rng.choice(list(SKIES)),
            ground=rng.choice(list(GROUNDS)),
            objects=tuple(objects),
        )
    return SynthScene(
        "room", wall=rng.choice(list(WALLS)), floor=rng.choice(list(FLOORS)), objects=tuple(objects)
    )


@dataclass(frozen=True)
class _Grid:
    """Per-size pixel geometry: directions ``dirs (H, W, 3)``, ``lat (H,)``, ``lon (W,)``."""

    dirs: torch.Tensor
    lat: torch.Tensor
    lon: torch.Tensor


@lru_cache(maxsize=4)
def _grid(height: int, width: int) -> _Grid:
    """Directions of every ERP pixel centre (conventions of :mod:`panollava.geometry.sphere`)."""
    y, x = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    lon, lat = erp_to_lonlat(x, y, height, width)  # (H, W) each
    return _Grid(lonlat_to_xyz(lon, lat), lat[:, 0].contiguous(), lon[0].contiguous())


def _rgb(color: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor(color, dtype=torch.float32) / 255.0  # (3,)


def _background(scene: SynthScene, grid: _Grid) -> torch.Tensor:
    """``(H, W, 3)`` background colours (separable in latitude and longitude: cheap)."""
    height, width = grid.lat.shape[0], grid.lon.shape[0]
    sin_lat = torch.sin(grid.lat)[:, None]  # (H, 1)
    if scene.kind == "outdoor":
        assert scene.sky is not None and scene.ground is not None
        up = sin_lat.clamp(min=0.0)  # (H, 1): 0 at the horizon, 1 at the zenith
        sky = (_rgb(SKIES[scene.sky]) * (0.8 + 0.2 * up) + 0.15 * (1 - up)).clamp(0, 1)
        ground = _rgb(GROUNDS[scene.ground]) * (0.85 + 0.15 * (-sin_lat).clamp(min=0.0))
        rows = torch.where(sin_lat >= 0, sky, ground)  # (H, 3)
        return rows[:, None, :].expand(height, width, 3).clone()
    assert scene.wall is not None and scene.floor is not None
    sin_lon, cos_lon = torch.sin(grid.lon).abs(), torch.cos(grid.lon).abs()  # (W,)
    reach = torch.maximum(sin_lon, cos_lon)[None, :]  # (1, W): wall distance factor
    wall_height = torch.tan(grid.lat)[:, None] / reach  # (H, W) height where the ray meets a wall
    label = (sin_lon > cos_lon).to(torch.uint8).expand(height, width).clone()  # 0/1: wall side
    label[wall_height < _ROOM_FLOOR] = 2
    label[wall_height > _ROOM_CEILING] = 3
    wall = _rgb(WALLS[scene.wall])
    palette = torch.stack([wall, 0.9 * wall, _rgb(FLOORS[scene.floor]), _rgb(CEILING)])  # (4, 3)
    return palette[label.long()]  # (H, W, 3)


@cache
def _polygon(shape: str) -> tuple[torch.Tensor, float]:
    """Vertices ``(n, 2)`` (CCW, evenly spaced angles from ``+90°``) of a star-shaped polygon
    of circumradius 1, and the angle of the first vertex (radians)."""
    if shape == "triangle":
        radii = [1.0] * 3
    elif shape == "square":
        radii = [1.0] * 4
    elif shape == "star":
        radii = [1.0, 0.42] * 5
    else:
        raise ValueError(f"{shape!r} is not a polygon shape")
    n = len(radii)
    start = math.pi / 2 if shape != "square" else math.pi / 4
    ang = [start + 2 * math.pi * k / n for k in range(n)]
    verts = torch.tensor(
        [[r * math.cos(a), r * math.sin(a)] for r, a in zip(radii, ang, strict=True)]
    )
    return verts, start


def shape_mask(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside test of ``shape`` (circumradius 1, centred) at tangent coordinates ``u, v (...)``."""
    r2 = u * u + v * v
    if shape == "disc":
        return r2 <= 1.0
    if shape == "ring":
        return (r2 <= 1.0) & (r2 >= 0.6**2)
    verts, start = _polygon(shape)
    n = verts.shape[0]
    sector = torch.floor(
        torch.remainder(torch.atan2(v, u) - start, 2 * math.pi) / (2 * math.pi / n)
    )
    k = sector.long().clamp(0, n - 1)
    a, b = verts[k], verts[(k + 1) % n]  # (..., 2) edge of the sector's triangle (0, a, b)
    cross = (b[..., 0] - a[..., 0]) * (v - a[..., 1]) - (b[..., 1] - a[..., 1]) * (u - a[..., 0])
    return cross >= 0


def _window(obj: SceneObject, grid: _Grid, half: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``(R,)`` and columns ``(C,)`` (wrapped across the seam) that can hold ``obj``:
    the bounding box of the spherical cap of angular radius ``half`` around its centre."""
    lat_c = math.radians(obj.pitch_deg)
    rows = torch.nonzero((grid.lat - lat_c).abs() <= half).squeeze(1)  # (R,)
    width = grid.lon.shape[0]
    if abs(lat_c) + half >= math.pi / 2:  # the cap reaches a pole: every longitude
        return rows, torch.arange(width)
    dlon = math.asin(min(1.0, math.sin(half) / math.cos(lat_c)))
    step = 2 * math.pi / width
    lo = math.floor((math.radians(obj.yaw_deg) - dlon + math.pi) / step - 0.5)
    hi = math.ceil((math.radians(obj.yaw_deg) + dlon + math.pi) / step - 0.5)
    return rows, torch.arange(lo, hi + 1).remainder(width).unique()


def _paint_object(img: torch.Tensor, obj: SceneObject, grid: _Grid) -> None:
    """Paint ``obj`` into ``img (H, W, 3)`` in place, touching only its bounding window."""
    lon_c, lat_c = math.radians(obj.yaw_deg), math.radians(obj.pitch_deg)
    half = math.radians(obj.size_deg) * 1.05
    rows, cols = _window(obj, grid, half)
    if rows.numel() == 0:
        return
    d = grid.dirs[rows][:, cols]  # (R, C, 3)
    c = torch.tensor(
        [math.cos(lat_c) * math.sin(lon_c), math.sin(lat_c), math.cos(lat_c) * math.cos(lon_c)]
    )
    e_right = torch.tensor([math.cos(lon_c), 0.0, -math.sin(lon_c)])
    e_up = torch.tensor(
        [-math.sin(lat_c) * math.sin(lon_c), math.cos(lat_c), -math.sin(lat_c) * math.cos(lon_c)]
    )
    dot = d @ c  # (R, C): cosine of the angle to the centre
    p = d / dot.clamp(min=1e-6)[..., None]  # (R, C, 3) on the tangent plane (p·c = 1)
    scale = math.tan(math.radians(obj.size_deg))
    u, v = (p @ e_right) / scale, (p @ e_up) / scale  # (R, C) each, circumradius 1
    rot = math.radians(obj.rotation_deg)
    ur = u * math.cos(rot) + v * math.sin(rot)  # rotate the point by -rot = the shape by +rot
    vr = -u * math.sin(rot) + v * math.cos(rot)
    inside = (dot > math.cos(half)) & shape_mask(obj.shape, ur, vr)  # (R, C)
    shade = 0.9 + 0.1 * (vr.clamp(-1, 1)[..., None] + 1) / 2  # (R, C, 1) soft top light
    index = (rows[:, None], cols[None, :])
    img[index] = torch.where(inside[..., None], _rgb(COLORS[obj.color]) * shade, img[index])


@lru_cache(maxsize=2)
def _noise_field(height: int, width: int) -> torch.Tensor:
    """Uniform noise in ``±1.5/255``, ``(H, W, 3)``, from a fixed private generator."""
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(height, width, 3, generator=gen) - 0.5) * (3.0 / 255.0)


def render_scene_hwc(
    scene: SynthScene, width: int, *, noise_seed: int | None = None
) -> torch.Tensor:
    """Render ``scene`` as an ERP ``(width // 2, width, 3)`` float in ``[0, 1]`` (image layout).

    ``noise_seed`` adds faint sensor noise (uniform, ±1.5/255) at a seeded offset.
    """
    if width < 8 or width % 2:
        raise ValueError(f"width must be an even number >= 8, got {width}")
    grid = _grid(width // 2, width)
    img = _background(scene, grid)  # (H, W, 3)
    for obj in scene.objects:
        _paint_object(img, obj, grid)
    if noise_seed is not None:  # a cached noise field, shifted per image: cheap and seeded
        gen = torch.Generator().manual_seed(noise_seed)
        dy, dx = torch.randint(0, width, (2,), generator=gen).tolist()
        img += torch.roll(_noise_field(width // 2, width), (dy, dx), (0, 1))
    return img.clamp_(0.0, 1.0)


def render_scene(scene: SynthScene, width: int, *, noise_seed: int | None = None) -> torch.Tensor:
    """Render ``scene`` as an ERP ``(3, width // 2, width)`` float in ``[0, 1]``."""
    img = render_scene_hwc(scene, width, noise_seed=noise_seed)  # (H, W, 3)
    return img.permute(2, 0, 1).contiguous()  # (3, H, W)


@dataclass(frozen=True)
class SceneOptions:
    """Scene control of ``data synth`` (:mod:`panollava.data.synth`): shares of seam/pole
    scenes, forced test subset, radius factor of the objects that are not small, share of
    small objects; :meth:`scene` draws scene ``index`` of a split under them."""

    seam_share: float = SEAM_SHARE
    pole_share: float = 0.0
    test_subset: str | None = None
    object_scale: float = 1.0
    small_share: float = SMALL_SHARE

    def __post_init__(self) -> None:
        check_scene_options(
            self.seam_share, self.pole_share, None, self.object_scale, self.small_share
        )
        if self.test_subset is not None and self.test_subset not in SUBSETS:
            raise ValueError(
                f"test_subset must be one of {SUBSETS} (or none), got {self.test_subset!r}"
            )

    def scene(self, seed: int, index: int, split: str) -> SynthScene:
        """Scene ``index`` of ``split`` under these options."""
        force = self.test_subset if split == "test" else None
        return sample_scene(
            seed,
            index,
            seam_share=self.seam_share,
            pole_share=self.pole_share,
            force=force,
            object_scale=self.object_scale,
            small_share=self.small_share,
        )
