"""Query-based captions of synthetic scenes, generated from the scene graph.

Short (≤ 20 words, rarely 23 with three small objects), lower-case, fixed templates and orders so a tiny model can learn them,
and strongly image-dependent so an image-free baseline cannot. For every query the first
caption is the canonical one (used for training and validation); the others are paraphrases
that join it as extra test references.

Directions are yaws relative to the viewer (yaw 0 = in front, positive = right): 4 sectors of
90° ("in front", "on the right", "behind the viewer", "on the left"). Orders: objects by yaw
going right from the front sector's left edge (-45°), colours in :data:`COLORS` order, shapes in :data:`SHAPES` order.
"""

from __future__ import annotations

from collections import Counter

from panollava.data.synth_scene import COLORS, SHAPES, SceneObject, SynthScene

__all__ = [
    "DIRECTIONS",
    "GROUND_PHRASE",
    "INDOOR_WORDS",
    "NUMBERS",
    "OUTDOOR_WORDS",
    "QUERIES",
    "RELATIONS",
    "SKY_PHRASE",
    "caption_scene",
    "direction_of",
    "join_words",
    "layout_pair",
    "relation_of",
]

QUERIES = ("objects", "colors", "shapes", "location", "weather", "small objects", "layout")
DIRECTIONS = ("in front", "on the right", "behind the viewer", "on the left")  # yaw 0, 90, 180, -90
RELATIONS = ("above", "below", "to the left of", "to the right of")  # layout: a RELATION b
NUMBERS = {1: "a", 2: "two", 3: "three", 4: "four"}  # shape counts ("an" never precedes a shape)
SKY_PHRASE = {
    "clear": "the sky is clear and blue",
    "cloudy": "the sky is cloudy and gray",
    "sunset": "it is sunset and the sky is pink",
}
GROUND_PHRASE = {"grass": "green grass", "sand": "sand", "snow": "snow"}
OUTDOOR_WORDS = ("outdoors", "outdoor", "outside")  # words that say the scene is outdoors
INDOOR_WORDS = ("indoors", "indoor", "inside", "room")  # ... and indoors


def join_words(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def direction_of(yaw_deg: float) -> str:
    """Viewer-relative direction of a yaw (4 sectors of 90° centred on 0, 90, 180, -90)."""
    yaw = (yaw_deg + 180.0) % 360.0 - 180.0
    if -45.0 <= yaw < 45.0:
        return DIRECTIONS[0]
    if 45.0 <= yaw < 135.0:
        return DIRECTIONS[1]
    if -135.0 <= yaw < -45.0:
        return DIRECTIONS[3]
    return DIRECTIONS[2]


def _by_yaw(objects: tuple[SceneObject, ...]) -> list[SceneObject]:
    """Objects going right (clockwise seen from above) from the left edge of the front sector
    (yaw -45°), so the order follows the sectors: in front, right, behind, left."""
    return sorted(objects, key=lambda o: (o.yaw_deg + 45.0) % 360.0)


def _name(o: SceneObject) -> str:
    return f"{o.color} {o.shape}"


def _a(o: SceneObject) -> str:
    """``"a red disc"`` / ``"an orange ring"``."""
    return f"{'an' if o.color[0] in 'aeiou' else 'a'} {_name(o)}"


def _objects(scene: SynthScene) -> list[str]:
    objs = _by_yaw(scene.objects)
    placed = join_words([f"{_a(o)} {direction_of(o.yaw_deg)}" for o in objs])
    short = ", ".join(_a(o) for o in objs)
    return [
        f"{placed}.",
        f"there is {placed}.",
        f"going right from the front: {short}.",
        f"the scene has {placed}.",
    ]


def _colors(scene: SynthScene) -> list[str]:
    present = {o.color for o in scene.objects}
    listed = join_words([c for c in COLORS if c in present])
    return [
        f"the objects are {listed}.",
        f"the colors are {listed}.",
        f"there are {listed} objects.",
        f"{listed}.",
    ]


def _shape_counts(scene: SynthScene) -> str:
    counts = Counter(o.shape for o in scene.objects)
    parts = [
        f"{NUMBERS[1]} {s}" if counts[s] == 1 else f"{NUMBERS[counts[s]]} {s}s"
        for s in SHAPES
        if counts[s]
    ]
    return join_words(parts)


def _shapes(scene: SynthScene) -> list[str]:
    listed = _shape_counts(scene)
    return [
        f"there is {listed}." if listed.startswith("a ") else f"there are {listed}.",
        f"the shapes are {listed}.",
        f"i see {listed}.",
    ]


def _location(scene: SynthScene) -> list[str]:
    if scene.kind == "outdoor":
        assert scene.ground is not None
        ground = GROUND_PHRASE[scene.ground]
        return [
            f"this is outdoors on {ground}.",
            f"an outdoor place with {ground} on the ground.",
            f"outside, the ground is {ground}.",
        ]
    return [
        f"this is a room with {scene.wall} walls and a {scene.floor} floor.",
        f"an indoor room, the walls are {scene.wall} and the floor is {scene.floor}.",
        f"inside a room with a {scene.floor} floor and {scene.wall} walls.",
    ]


def _weather(scene: SynthScene) -> list[str]:
    if scene.kind == "room":
        return [
            "it is indoors, the weather is not visible.",
            "this is inside a room, so there is no weather.",
            "indoors, no sky is visible.",
        ]
    assert scene.sky is not None
    phrase = SKY_PHRASE[scene.sky]
    return [f"{phrase}.", f"outside, {phrase}.", f"the weather: {phrase}."]


def _small(scene: SynthScene) -> list[str]:
    small = [o for o in _by_yaw(scene.objects) if o.small]
    if not small:
        return [
            "there are no small objects.",
            "no small objects are visible.",
            "all the objects are large.",
        ]
    listed = join_words([f"{_a(o)} {direction_of(o.yaw_deg)}" for o in small])
    if len(small) == 1:
        return [
            f"the small object is {listed}.",
            f"one small object: {listed}.",
            f"i see {listed}.",
        ]
    return [f"the small objects are {listed}.", f"small objects: {listed}.", f"i see {listed}."]


def relation_of(a: SceneObject, b: SceneObject) -> str:
    """Where ``a`` is relative to ``b`` (one of :data:`RELATIONS`): above/below when the pitch
    gap dominates, else left/right by the wrapped yaw difference."""
    dyaw = (b.yaw_deg - a.yaw_deg + 180.0) % 360.0 - 180.0  # > 0: b is to the right of a
    dpitch = a.pitch_deg - b.pitch_deg
    if abs(dpitch) > abs(dyaw):
        return RELATIONS[0] if dpitch > 0 else RELATIONS[1]
    return RELATIONS[2] if dyaw > 0 else RELATIONS[3]


def layout_pair(scene: SynthScene) -> tuple[SceneObject, SceneObject]:
    """The two objects the layout query relates: the largest, then the second largest."""
    a, b = sorted(scene.objects, key=lambda o: (-o.size_deg, o.color))[:2]
    return a, b


def _layout(scene: SynthScene) -> list[str]:
    a, b = layout_pair(scene)
    rel = relation_of(a, b)
    return [
        f"the {_name(a)} is {rel} the {_name(b)}.",
        f"the largest object, {_a(a)}, is {rel} the {_name(b)}.",
        f"the {_name(a)} appears {rel} the {_name(b)}.",
    ]


_BUILDERS = {
    "objects": _objects,
    "colors": _colors,
    "shapes": _shapes,
    "location": _location,
    "weather": _weather,
    "small objects": _small,
    "layout": _layout,
}


def caption_scene(scene: SynthScene) -> dict[str, list[str]]:
    """``{query: [canonical caption, paraphrase, …]}`` for every query of :data:`QUERIES`."""
    if len(scene.objects) < 2:
        raise ValueError("synthetic scenes need at least two objects (the layout query)")
    return {q: _BUILDERS[q](scene) for q in QUERIES}
