"""Grounded metrics: what a caption of a synthetic scene *says* against its scene graph.

n-gram metrics on templated captions reward the template. Synthetic scenes (``panollava data
synth``) come with exact scene graphs, so each prediction is parsed with the caption grammar of
:mod:`panollava.data.synth_captions` (its colour, shape, direction, relation, number and background
vocabularies) and checked against the scene of its image:

* ``objects`` / ``small objects``: named ``(colour, shape)`` objects against the scene's (small)
  objects -> precision/recall/F1; the direction said after a correctly named object (``in front``,
  ``on the right``, ...) against its yaw sector -> direction accuracy.
* ``layout``: the two named objects against the two largest; the stated relation (``above``,
  ``to the left of``, ...) of two correctly named objects against their true relation.
* ``colors``: named colours against the scene's colours (P/R/F1); ``shapes``: named shapes (P/R/F1)
  and, for each named shape that is present, whether its count (``a``, ``two``, ...) is right.
* ``location`` / ``weather``: the scene's background attributes (indoor/outdoor, ground or
  wall and floor colours; sky) stated correctly (an attribute stated with two values is wrong).
* Subsets of scene objects, over the ``objects`` and ``small objects`` queries: across the ±180°
  seam, near a pole, small (:data:`panollava.data.synth_scene.SUBSETS`): recall and direction
  accuracy (precision has no subset: a hallucinated object belongs to none).

Every metric is a ratio of sums of per-sample counts (micro-average; F1 = 2TP / (2TP+FP+FN)), so the
bootstrap resamples images exactly as for the caption metrics. A direction is scored only where it
is stated (a paraphrase without directions is not penalised); metrics without any counted item
are ``None``. Grounded samples are (image, query) pairs, whatever the caption protocol.

**Finding the scene graphs.** For a references table ``T`` (``score --references``; the
predictions file itself when it carries the references) and an image url ``u`` (relative to
``T``'s folder, as ``data synth`` writes them; absolute paths work too), the scene graph is in
``T.parent / u.parent / scene.json``, the entry whose image file name is ``u``'s. So scoring
against ``OUT/test.tsv`` of ``data synth --out OUT`` finds ``OUT/test/scene.json``. When no such file exists for any url,
the references have no scene graphs and no grounded metrics are computed; when only some do, or
one lacks an image, it is an error.

**Chance** is simulated, not derived: every (image, query) is answered with the canonical caption
of :data:`CHANCE_DRAWS` random scenes of its own (seeded), drawn with the scene options its
scene.json records (``data synth --object-scale``, ``--small-share``, ...; the default prior for
files without options), i.e. a grammatical guess that knows the scene distribution but not the
image.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from panollava.data.synth_captions import (
    DIRECTIONS,
    GROUND_PHRASE,
    INDOOR_WORDS,
    NUMBERS,
    OUTDOOR_WORDS,
    QUERIES,
    RELATIONS,
    SKY_PHRASE,
    caption_scene,
    direction_of,
    layout_pair,
    relation_of,
)
from panollava.data.synth_scene import (
    COLORS,
    FLOORS,
    SHAPES,
    SUBSETS,
    WALLS,
    SceneObject,
    SceneOptions,
    SynthScene,
)
from panollava.evaluation.bootstrap import PairedResult, image_weights
from panollava.evaluation.tables import TableError

__all__ = [
    "GROUNDED_FILE",
    "HEADLINE",
    "METRICS",
    "GroundedSamples",
    "SceneGraphs",
    "chance_samples",
    "find_scene_graphs",
    "grounded_entry",
    "grounded_samples",
    "metric_definitions",
    "paired_grounded",
    "read_grounded_csv",
    "sample_stats",
    "write_grounded_csv",
]

GROUNDED_FILE = "grounded.csv"
CHANCE_DRAWS = 5
CHANCE_SEED = 9_000_001  # a seed no `data synth` default uses
CHANCE_METHOD = (
    f"simulated: each (image, query) answered by the canonical captions of {CHANCE_DRAWS} random "
    f"scenes per image, drawn with the scene options of its scene.json (seed {CHANCE_SEED}), "
    "counts averaged"
)
STATS = (
    "tp",
    "fp",
    "fn",
    "dir_ok",
    "dir_n",
    "count_ok",
    "count_n",
    "bg_ok",
    "bg_n",
    *(f"{s}_{k}" for s in SUBSETS for k in ("hit", "n", "dir_ok", "dir_n")),
)
_COL = {name: i for i, name in enumerate(STATS)}
_OBJ_QUERIES = ("objects", "small objects", "layout")
_DIR_QUERIES = ("objects", "small objects")


@dataclass(frozen=True)
class Metric:
    """``sum(num · stats) / sum(den · stats)`` over the samples of ``queries``."""

    queries: tuple[str, ...]
    num: dict[str, float]
    den: dict[str, float]


def _prf(prefix: str, queries: tuple[str, ...]) -> dict[str, Metric]:
    """F1, precision and recall of named items (F1 = 2TP / (2TP + FP + FN))."""
    return {
        f"{prefix} F1": Metric(queries, {"tp": 2}, {"tp": 2, "fp": 1, "fn": 1}),
        f"{prefix} P": Metric(queries, {"tp": 1}, {"tp": 1, "fp": 1}),
        f"{prefix} R": Metric(queries, {"tp": 1}, {"tp": 1, "fn": 1}),
    }


def _ratio(queries: tuple[str, ...], ok: str, n: str) -> Metric:
    return Metric(queries, {ok: 1}, {n: 1})


METRICS: dict[str, Metric] = {
    **_prf("object", _OBJ_QUERIES),  # (colour, shape) objects of every query that names them
    "direction acc": _ratio(_DIR_QUERIES, "dir_ok", "dir_n"),
    "relation acc": _ratio(("layout",), "dir_ok", "dir_n"),
    **_prf("colour", ("colors",)),
    **_prf("shape", ("shapes",)),
    "count acc": _ratio(("shapes",), "count_ok", "count_n"),
    "background acc": _ratio(("location", "weather"), "bg_ok", "bg_n"),
    **{f"{s} recall": _ratio(_DIR_QUERIES, f"{s}_hit", f"{s}_n") for s in SUBSETS},
    **{f"{s} direction acc": _ratio(_DIR_QUERIES, f"{s}_dir_ok", f"{s}_dir_n") for s in SUBSETS},
    **_prf("objects", ("objects",)),  # per query type
    **_prf("small objects", ("small objects",)),
    **_prf("layout", ("layout",)),
    "location acc": _ratio(("location",), "bg_ok", "bg_n"),
    "weather acc": _ratio(("weather",), "bg_ok", "bg_n"),
}


def metric_definitions() -> dict[str, str]:
    """Human-readable definition of every metric (recorded in metrics.json)."""

    def terms(t: dict[str, float]) -> str:
        return " + ".join(f"{c:g}·{k}" if c != 1 else k for k, c in t.items())

    return {
        name: f"sum({terms(m.num)}) / sum({terms(m.den)}) over queries {list(m.queries)}"
        for name, m in METRICS.items()
    }


HEADLINE = (
    "object F1",
    "direction acc",
    "relation acc",
    "colour F1",
    "shape F1",
    "count acc",
    "background acc",
    "seam recall",
    "pole recall",
    "small recall",
)

# --- parsing with the caption grammar -------------------------------------------------------


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_COLOR_RE = re.compile(rf"\b({_alt(COLORS)})\b")
_OBJECT_RE = re.compile(rf"\b({_alt(COLORS)})\s+({_alt(SHAPES)})s?\b")
_DIRECTION_RE = re.compile(rf"\b({_alt(DIRECTIONS)})\b")
_RELATION_RE = re.compile(rf"\b({_alt(RELATIONS)})\b")
_COUNT_WORDS = {word: n for n, word in NUMBERS.items()} | {"an": 1, "one": 1}
_SHAPE_RE = re.compile(
    rf"\b(?:({_alt(_COUNT_WORDS)})\s+)?(?:(?:{_alt(COLORS)})\s+)?({_alt(SHAPES)})(s?)\b"
)
_OUTDOOR_RE = re.compile(rf"\b({_alt(OUTDOOR_WORDS)})\b")
_INDOOR_RE = re.compile(rf"\b({_alt(INDOOR_WORDS)})\b")
_SKY_RE = re.compile(rf"\b({_alt(SKY_PHRASE)})\b")
_GROUND_RE = re.compile(rf"\b({_alt(GROUND_PHRASE)})\b")
_WALL_RE = re.compile(rf"\b({_alt(WALLS)}) walls\b|\bwalls are ({_alt(WALLS)})\b")
_FLOOR_RE = re.compile(rf"\b({_alt(FLOORS)}) floor\b|\bfloor is ({_alt(FLOORS)})\b")


@dataclass(frozen=True)
class Mention:
    """An object named in a caption, with the direction phrase that follows it (if any)."""

    color: str
    shape: str
    direction: str | None
    start: int
    end: int


def parse_objects(text: str) -> list[Mention]:
    """Every ``<colour> <shape>`` in ``text``, each with the first direction phrase between it
    and the next object."""
    text = text.lower()
    found = list(_OBJECT_RE.finditer(text))
    out = []
    for k, m in enumerate(found):
        stop = found[k + 1].start() if k + 1 < len(found) else len(text)
        d = _DIRECTION_RE.search(text, m.end(), stop)
        out.append(Mention(m[1], m[2], d[1] if d else None, m.start(), m.end()))
    return out


def parse_shape_counts(text: str) -> dict[str, int | None]:
    """``shape -> count`` of the first mention of each shape (``None``: a plural without number)."""
    out: dict[str, int | None] = {}
    for m in _SHAPE_RE.finditer(text.lower()):
        count = _COUNT_WORDS[m[1]] if m[1] else (None if m[3] else 1)
        out.setdefault(m[2], count)
    return out


def parse_background(text: str, query: str) -> dict[str, set[str]]:
    """Stated background attributes: ``kind`` (outdoor/room), ``ground``, ``wall``, ``floor``,
    ``sky``; a sky (weather) or ground (location) word also says "outdoor"."""
    text = text.lower()
    out: dict[str, set[str]] = {"kind": set()}
    if _OUTDOOR_RE.search(text):
        out["kind"].add("outdoor")
    if _INDOOR_RE.search(text):
        out["kind"].add("room")
    if query == "weather":
        out["sky"] = {m[1] for m in _SKY_RE.finditer(text)}
    else:
        out["ground"] = {m[1] for m in _GROUND_RE.finditer(text)}
        out["wall"] = {m[1] or m[2] for m in _WALL_RE.finditer(text)}
        out["floor"] = {m[1] or m[2] for m in _FLOOR_RE.finditer(text)}
    if out.get("sky") or out.get("ground"):
        out["kind"].add("outdoor")
    return out


# --- per-sample counts ----------------------------------------------------------------------


def _set_counts(stats: np.ndarray, said: set, truth: set) -> None:
    stats[_COL["tp"]] += len(said & truth)
    stats[_COL["fp"]] += len(said - truth)
    stats[_COL["fn"]] += len(truth - said)


def _objects_stats(stats: np.ndarray, text: str, truth: Sequence[SceneObject]) -> None:
    mentions: dict[tuple[str, str], Mention] = {}
    for m in parse_objects(text):
        mentions.setdefault((m.color, m.shape), m)
    by_key = {(o.color, o.shape): o for o in truth}
    _set_counts(stats, set(mentions), set(by_key))
    for key, o in by_key.items():
        m = mentions.get(key)
        stated = m is not None and m.direction is not None
        ok = stated and m.direction == direction_of(o.yaw_deg)  # type: ignore[union-attr]
        if stated:
            stats[_COL["dir_n"]] += 1
            stats[_COL["dir_ok"]] += ok
        for s in SUBSETS:
            if o.in_subset(s):
                stats[_COL[f"{s}_n"]] += 1
                stats[_COL[f"{s}_hit"]] += m is not None
                stats[_COL[f"{s}_dir_n"]] += stated
                stats[_COL[f"{s}_dir_ok"]] += ok


def _layout_stats(stats: np.ndarray, text: str, scene: SynthScene) -> None:
    mentions = parse_objects(text)
    said = {(m.color, m.shape) for m in mentions}
    _set_counts(stats, said, {(o.color, o.shape) for o in layout_pair(scene)})
    if len(mentions) < 2:
        return
    first, second = mentions[0], mentions[1]
    rel = _RELATION_RE.search(text.lower(), first.end, second.start)
    by_key = {(o.color, o.shape): o for o in scene.objects}
    a, b = by_key.get((first.color, first.shape)), by_key.get((second.color, second.shape))
    if rel is not None and a is not None and b is not None and a != b:
        stats[_COL["dir_n"]] += 1
        stats[_COL["dir_ok"]] += rel[1] == relation_of(a, b)


def _shapes_stats(stats: np.ndarray, text: str, scene: SynthScene) -> None:
    said = parse_shape_counts(text)
    truth = Counter(o.shape for o in scene.objects)
    _set_counts(stats, set(said), set(truth))
    for shape, count in said.items():
        if shape in truth:
            stats[_COL["count_n"]] += 1
            stats[_COL["count_ok"]] += count == truth[shape]


def _background_stats(stats: np.ndarray, text: str, scene: SynthScene, query: str) -> None:
    said = parse_background(text, query)
    truth: dict[str, str | None] = {"kind": scene.kind}
    if query == "weather":
        if scene.kind == "outdoor":
            truth["sky"] = scene.sky
    elif scene.kind == "outdoor":
        truth["ground"] = scene.ground
    else:
        truth |= {"wall": scene.wall, "floor": scene.floor}
    stats[_COL["bg_n"]] += len(truth)
    stats[_COL["bg_ok"]] += sum(said.get(k) == {v} for k, v in truth.items())


def sample_stats(query: str, prediction: str, scene: SynthScene) -> np.ndarray | None:
    """Counts ``(len(STATS),)`` of one (query, prediction) against ``scene``; ``None`` for a
    query outside the synthetic grammar (not grounded)."""
    stats = np.zeros(len(STATS))
    if query == "objects":
        _objects_stats(stats, prediction, scene.objects)
    elif query == "small objects":
        _objects_stats(stats, prediction, [o for o in scene.objects if o.small])
    elif query == "layout":
        _layout_stats(stats, prediction, scene)
    elif query == "colors":
        said = {m[1] for m in _COLOR_RE.finditer(prediction.lower())}
        _set_counts(stats, said, {o.color for o in scene.objects})
    elif query == "shapes":
        _shapes_stats(stats, prediction, scene)
    elif query in ("location", "weather"):
        _background_stats(stats, prediction, scene, query)
    else:
        return None
    return stats


# --- corpus metrics and bootstrap -----------------------------------------------------------


@dataclass
class GroundedSamples:
    """Grounded (image, query) samples of one run: keys ``(url, query)`` and counts ``(N, S)``."""

    keys: list[tuple[str, str]]
    stats: np.ndarray

    @property
    def urls(self) -> list[str]:
        return [u for u, _ in self.keys]

    def metrics(self, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every metric for sample weights ``(B, N)`` (default: all ones) -> ``(B,)`` each,
        NaN where nothing was counted."""
        if weights is None:
            weights = np.ones((1, len(self.keys)))
        queries = np.array([q for _, q in self.keys], dtype=object)
        out = {}
        for name, m in METRICS.items():
            mask = np.isin(queries, m.queries).astype(float)  # (N,)
            num = weights @ (mask * (self.stats @ _coef(m.num)))  # (B,)
            den = weights @ (mask * (self.stats @ _coef(m.den)))
            out[name] = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)
        return out


def _coef(terms: dict[str, float]) -> np.ndarray:
    coef = np.zeros(len(STATS))
    for name, value in terms.items():
        coef[_COL[name]] = value
    return coef


def _none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def grounded_entry(samples: GroundedSamples, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """``{"metrics", "ci95", "counts"}`` for metrics.json (95% percentile CIs over images)."""
    point = {k: _none(v[0]) for k, v in samples.metrics().items()}
    ci = {}
    if n_boot > 0 and samples.keys:
        reps = samples.metrics(image_weights(samples.urls, n_boot, seed))
        for name, values in reps.items():
            finite = values[np.isfinite(values)]
            if finite.size:
                lo, hi = np.percentile(finite, [2.5, 97.5])
                ci[name] = [float(lo), float(hi)]
    queries = Counter(q for _, q in samples.keys)
    return {"metrics": point, "ci95": ci, "counts": {"samples": len(samples.keys)} | queries}


def paired_grounded(
    a: GroundedSamples,
    b: GroundedSamples,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = tuple(METRICS),
) -> list[PairedResult]:
    """Paired bootstrap of ``a - b`` per metric (same images resampled for both runs)."""
    position = {k: i for i, k in enumerate(b.keys)}
    if set(a.keys) != set(position) or len(a.keys) != len(b.keys):
        raise TableError("grounded samples differ between the runs (not the same test set)")
    b_stats = b.stats[[position[k] for k in a.keys]]
    aligned = GroundedSamples(list(a.keys), b_stats)
    weights = image_weights(a.urls, n_boot, seed)
    full_a, full_b = a.metrics(), aligned.metrics()
    rep_a, rep_b = a.metrics(weights), aligned.metrics(weights)
    out = []
    for name in metrics:
        diff = rep_a[name] - rep_b[name]
        diff = diff[np.isfinite(diff)]
        if not diff.size:
            continue
        lo, hi = np.percentile(diff, [2.5, 97.5])
        p = 2 * min(np.mean(diff <= 0), np.mean(diff >= 0))
        observed = float(full_a[name][0] - full_b[name][0])
        out.append(PairedResult(name, observed, (float(lo), float(hi)), float(min(1.0, p)), n_boot))
    return out


# --- building samples: scene graphs, runs, chance -------------------------------------------


def _image_key(path: Path) -> str:
    return str(path.resolve())


@dataclass(frozen=True)
class SceneGraphs:
    """Scene of every image url of a table, the scene.json files they came from and the scene
    options and split each image was drawn with (``SceneOptions.scene(seed, index, split)``)."""

    scenes: dict[str, SynthScene]
    files: list[Path]
    priors: dict[str, tuple[SceneOptions, str]] = field(default_factory=dict)


def find_scene_graphs(table: str | Path, urls: Sequence[str]) -> SceneGraphs | None:
    """The scene graphs of the images ``urls`` of a references ``table`` (see the module
    docstring); ``None`` when the table has no scene graphs."""
    table = Path(table)
    local = sorted({u for u in urls if "://" not in u})
    if not local or len(local) < len(set(urls)):
        return None
    files = {u: table.parent / Path(u).parent / "scene.json" for u in local}
    present = {f for f in files.values() if f.is_file()}
    if not present:
        return None
    images: dict[str, SynthScene] = {}
    priors: dict[Path, tuple[SceneOptions, str]] = {}
    for f in present:
        try:
            meta = json.loads(f.read_text(encoding="utf-8"))
            priors[f] = (SceneOptions(**meta.get("options", {})), meta.get("split", "test"))
            for e in meta["scenes"]:
                images[_image_key(f.parent / Path(e["url"]).name)] = SynthScene.from_json(e)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TableError(
                f"{f}: not a scene graph file written by `data synth` ({exc})"
            ) from exc
    lacking = [u for u in local if files[u] not in present]
    if lacking:
        raise TableError(
            f"{table}: {len(lacking)} image(s) have no scene.json next to them (e.g. "
            f"{files[lacking[0]]}) while others do; grounded metrics need all or none"
        )
    out = {}
    for u in local:
        scene = images.get(_image_key(table.parent / u))
        if scene is None:
            raise TableError(f"{files[u]}: no scene for image {u!r} of {table}")
        out[u] = scene
    return SceneGraphs(out, sorted(present), {u: priors[files[u]] for u in local})


def grounded_samples(
    urls: Sequence[str],
    queries: Sequence[str],
    predictions: Sequence[str],
    scenes: dict[str, SynthScene],
) -> GroundedSamples:
    """One sample per (url, query) of the grammar's queries (the first prediction of a pair)."""
    keys, rows, seen = [], [], set()
    for url, query, pred in zip(urls, queries, predictions, strict=True):
        if (url, query) in seen or query not in QUERIES:
            continue
        seen.add((url, query))
        keys.append((url, query))
        rows.append(sample_stats(query, pred, scenes[url]))
    return GroundedSamples(keys, np.array(rows).reshape(len(keys), len(STATS)))


def chance_samples(
    keys: Sequence[tuple[str, str]],
    scenes: dict[str, SynthScene],
    *,
    priors: dict[str, tuple[SceneOptions, str]] | None = None,
    draws: int = CHANCE_DRAWS,
) -> GroundedSamples:
    """The chance level (see the module docstring): each image gets its own ``draws`` random
    scenes (seeded by its position among the images), drawn with ``priors[url]`` (scene options
    and split; the default prior where absent); counts averaged over the draws."""
    priors = priors or {}
    default = (SceneOptions(), "test")
    image = {u: i for i, u in enumerate(dict.fromkeys(u for u, _ in keys))}
    guesses: dict[str, list[dict[str, list[str]]]] = {}
    stats = np.zeros((len(keys), len(STATS)))
    for i, (url, query) in enumerate(keys):
        if url not in guesses:
            first = image[url] * draws
            options, split = priors.get(url, default)
            guesses[url] = [
                caption_scene(options.scene(CHANCE_SEED, first + d, split)) for d in range(draws)
            ]
        for guess in guesses[url]:
            stats[i] += sample_stats(query, guess[query][0], scenes[url])  # type: ignore[operator]
    return GroundedSamples(list(keys), stats / draws)


def write_grounded_csv(path: str | Path, runs: dict[str, GroundedSamples]) -> None:
    """``run, url, query`` + every count of :data:`STATS`, one line per grounded sample."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["run", "url", "query", *STATS])
        for run, samples in runs.items():
            for (url, query), row in zip(samples.keys, samples.stats, strict=True):
                writer.writerow([run, url, query, *(repr(float(v)) for v in row)])


def read_grounded_csv(path: str | Path) -> dict[str, GroundedSamples]:
    """Inverse of :func:`write_grounded_csv`."""
    keys: dict[str, list[tuple[str, str]]] = {}
    rows: dict[str, list[list[float]]] = {}
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            keys.setdefault(r["run"], []).append((r["url"], r["query"]))
            rows.setdefault(r["run"], []).append([float(r[s]) for s in STATS])
    return {
        run: GroundedSamples(keys[run], np.array(rows[run]).reshape(-1, len(STATS))) for run in keys
    }
