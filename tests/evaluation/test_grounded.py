"""Grounded metrics: predictions parsed with the caption grammar and checked against scene graphs."""

import csv
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.data.synth import SceneOptions, synthesize
from panollava.data.synth_captions import caption_scene
from panollava.data.synth_scene import SceneObject, SynthScene, sample_scene
from panollava.evaluation.compare import compare_markdown
from panollava.evaluation.grounded import (
    HEADLINE,
    METRICS,
    STATS,
    GroundedSamples,
    chance_samples,
    find_scene_graphs,
    paired_grounded,
    parse_objects,
    sample_stats,
)
from panollava.evaluation.report import write_report
from panollava.evaluation.scoring import load_run_dir, score_files
from panollava.evaluation.tables import TableError

# A room with three objects: a red disc in front (largest), a blue star on the right, and a small
# yellow ring behind the viewer across the ±180° seam.
SCENE = SynthScene(
    "room",
    wall="beige",
    floor="brown",
    objects=(
        SceneObject("star", "blue", 100.0, 0.0, 15.0),
        SceneObject("disc", "red", -10.0, 0.0, 20.0),
        SceneObject("ring", "yellow", 180.0, 30.0, 5.0),
    ),
)


def _metrics(*samples: tuple[str, str], scene: SynthScene = SCENE) -> dict[str, float | None]:
    """Corpus metrics of (query, prediction) samples all about ``scene``."""
    keys = [(f"img{i}", q) for i, (q, _) in enumerate(samples)]
    stats = np.array([sample_stats(q, p, scene) for q, p in samples])
    values = GroundedSamples(keys, stats).metrics()
    return {k: (float(v[0]) if np.isfinite(v[0]) else None) for k, v in values.items()}


def test_the_scene_has_the_subsets_the_hand_computed_values_assume():
    blue, red, yellow = SCENE.objects
    assert yellow.seam and yellow.small and not yellow.pole
    assert not (blue.seam or red.seam or blue.small or red.small)
    assert SceneObject("disc", "red", 0.0, 70.0, 10.0).pole
    assert SceneObject("disc", "red", 0.0, 85.0, 10.0).seam  # holds the pole: every meridian


def test_every_reference_caption_scores_one():
    """Canonical captions and paraphrases of 150 scenes (seam and pole objects included)."""
    keys, rows = [], []
    for i in range(150):
        scene = sample_scene(4, i, seam_share=0.5, pole_share=0.4)
        for query, captions in caption_scene(scene).items():
            for caption in captions:
                keys.append((str(i), query))
                rows.append(sample_stats(query, caption, scene))
    values = GroundedSamples(keys, np.array(rows)).metrics()
    assert {k: float(v[0]) for k, v in values.items()} == {k: 1.0 for k in METRICS}


def test_wrong_colour():
    m = _metrics(("objects", "a green disc in front, a blue star on the right and a yellow ring "
                  "behind the viewer."))  # fmt: skip
    assert m["object P"] == m["object R"] == m["object F1"] == pytest.approx(2 / 3)
    assert m["direction acc"] == 1.0  # the two correctly named objects have the right direction
    assert m["seam recall"] == m["small recall"] == 1.0 and m["pole recall"] is None
    m = _metrics(("colors", "the objects are red, green and blue."))
    assert m["colour F1"] == pytest.approx(2 / 3) and m["object F1"] is None


def test_wrong_direction():
    m = _metrics(("objects", "a red disc on the left, a blue star on the right and a yellow ring "
                  "in front."))  # fmt: skip
    assert m["object F1"] == 1.0
    assert m["direction acc"] == pytest.approx(1 / 3)
    assert m["seam recall"] == 1.0 and m["seam direction acc"] == 0.0


def test_wrong_relation_and_swapped_objects():
    m = _metrics(("layout", "the red disc is to the right of the blue star."))
    assert m["layout F1"] == 1.0 and m["relation acc"] == 0.0
    # swapping the objects inverts the relation: still right
    assert (
        _metrics(("layout", "the blue star is to the right of the red disc."))["relation acc"] == 1
    )
    # the example: both objects made up; no relation between real objects to check
    m = _metrics(("layout", "the yellow star is to the right of the purple triangle."))
    assert m["layout F1"] == 0.0 and m["relation acc"] is None


def test_wrong_count():
    m = _metrics(("shapes", "there are two discs and a star."))
    assert m["shape F1"] == pytest.approx(0.8)  # tp disc, star; fn ring: 4 / 5
    assert m["count acc"] == 0.5  # disc count wrong, star right


def test_hallucinated_object_and_micro_average():
    halluc = (
        "objects",
        "a red disc in front, a blue star on the right, a yellow ring behind the viewer and a "
        "black square on the left.",
    )
    m = _metrics(halluc)
    assert m["object P"] == 0.75 and m["object R"] == 1.0
    assert m["object F1"] == pytest.approx(6 / 7) and m["direction acc"] == 1.0
    # micro-average with a second answer (tp 1 blue star, fp 1 green disc, fn 2 red disc and
    # yellow ring): tp 3 + 1, fp 1 + 1, fn 0 + 2 -> F1 = 8 / 12 (the mean of F1s would be 0.76)
    wrong = ("objects", "a green disc in front, a blue star on the right.")
    m = _metrics(halluc, wrong)
    assert m["object F1"] == pytest.approx(8 / 12)
    # the small-objects query only expects the yellow ring
    m = _metrics(("small objects", "the small objects are a yellow ring and a blue star."))
    assert m["small objects F1"] == pytest.approx(2 / 3) and m["direction acc"] is None
    assert m["small objects P"] == 0.5 and m["small objects R"] == 1.0


def test_wrong_background():
    m = _metrics(("location", "this is outdoors on green grass."))
    assert m["location acc"] == 0.0  # kind, wall, floor all wrong
    m = _metrics(("location", "this is a room with gray walls and a brown floor."))
    assert m["location acc"] == pytest.approx(2 / 3)
    assert _metrics(("weather", "the sky is clear and blue."))["weather acc"] == 0.0
    m = _metrics(("location", "a room with beige walls."), ("weather", "it is indoors."))
    assert m["background acc"] == pytest.approx(3 / 4)  # floor missing


def test_parser_reads_directions_up_to_the_next_object():
    found = parse_objects("going right: a red disc, then an orange ring on the left.")
    assert [(m.color, m.shape, m.direction) for m in found] == [
        ("red", "disc", None),
        ("orange", "ring", "on the left"),
    ]


def test_chance_guesses_from_the_scene_options_the_data_was_drawn_with(tmp_path):
    """Data drawn without small objects: chance must not guess small objects (the default
    prior's 30% would make its 'small objects' answers wrong by construction)."""
    synthesize(
        tmp_path,
        n=30,
        seed=5,
        width=64,
        tokenizer=False,
        options=SceneOptions(small_share=0.0, object_scale=1.5, test_subset="seam"),
    )
    table = tmp_path / "test.tsv"
    urls = [line.split("\t")[0] for line in table.read_text().splitlines()[1:]]
    graphs = find_scene_graphs(table, urls)
    options = SceneOptions(small_share=0.0, object_scale=1.5, test_subset="seam")
    assert graphs.priors == {u: (options, "test") for u in urls}
    keys = [(u, "small objects") for u in dict.fromkeys(urls)]
    chance = chance_samples(keys, graphs.scenes, priors=graphs.priors)
    assert chance.stats[:, STATS.index("fp")].sum() == 0  # never names a small object
    default = chance_samples(keys, graphs.scenes)
    assert default.stats[:, STATS.index("fp")].sum() > 0
    # --test-subset forces the subset on test scenes only: chance on valid is not forced either
    valid = tmp_path / "valid.tsv"
    valid_urls = [line.split("\t")[0] for line in valid.read_text().splitlines()[1:]]
    seam = [(u, "objects") for u in dict.fromkeys(valid_urls)]
    vgraphs = find_scene_graphs(valid, valid_urls)
    assert set(vgraphs.priors.values()) == {(options, "valid")}
    forced = [options.scene(9, i, "test") for i in range(12)]
    drawn = [options.scene(9, i, "valid") for i in range(12)]
    assert all(any(o.seam for o in s.objects) for s in forced)
    assert chance_samples(seam, vgraphs.scenes, priors=vgraphs.priors).stats.shape[0] == len(seam)
    assert not all(any(o.seam for o in s.objects) for s in drawn)


def test_chance_is_seeded_and_low():
    scenes = {f"u{i}": sample_scene(7, i) for i in range(40)}
    queries = ("objects", "colors", "shapes", "location", "weather", "small objects", "layout")
    keys = [(u, q) for u in scenes for q in queries]
    a, b = chance_samples(keys, scenes), chance_samples(keys, scenes)
    assert np.array_equal(a.stats, b.stats)
    m = a.metrics()
    assert 0.0 < m["object F1"][0] < 0.3 and 0.2 < m["colour F1"][0] < 0.7
    # a random caption rarely names two real objects (no relation to check) and there are no
    # polar objects in the default prior: those two are undefined, the rest measured
    undefined = {k for k in HEADLINE if not math.isfinite(m[k][0])}
    assert undefined <= {"relation acc", "pole recall"}


def test_paired_test_of_a_run_with_itself_is_zero():
    keys = [(f"u{i // 2}", q) for i, q in enumerate(["objects", "colors"] * 5)]
    stats = np.random.default_rng(0).integers(0, 3, (10, len(STATS))).astype(float)
    run = GroundedSamples(keys, stats)
    results = paired_grounded(run, run, n_boot=50)
    assert results and all(r.difference == 0.0 and r.ci == (0.0, 0.0) for r in results)


# --- with scored run folders ----------------------------------------------------------------


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("gsynth")
    synthesize(out, n=20, seed=1, width=64, tokenizer=False)  # test split: 2 panoramas
    return out


def _predictions(path, rows):
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "query", "prediction", "method"])
        writer.writerows(rows)
    return path


def _score(preds, synth_data, out):
    result = CliRunner().invoke(
        app,
        [
            *("score", str(preds), "--references", str(synth_data / "test.tsv")),
            *("--out", str(out), "--metric", "CIDEr", "--bootstrap", "50"),
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_score_adds_grounded_metrics_compare_and_report(synth_data, tmp_path):
    with (synth_data / "test.tsv").open(newline="") as fh:
        refs = list(csv.DictReader(fh, delimiter="\t"))
    firsts = {(r["url"], r["query"]): r["annotation"] for r in reversed(refs)}
    oracle = _predictions(tmp_path / "o.csv", [(u, q, t, "oracle") for (u, q), t in firsts.items()])
    output = _score(oracle, synth_data, tmp_path / "oracle")
    assert "object F1" in output and "chance (random scene captions)" in output
    constant = [(u, q, "a red disc in front.", "constant") for (u, q) in firsts]
    _score(_predictions(tmp_path / "c.csv", constant), synth_data, tmp_path / "constant")

    meta = json.loads((tmp_path / "oracle" / "metrics.json").read_text())
    grounded = meta["runs"]["oracle"]["grounded"]
    assert all(grounded["metrics"][k] == 1.0 for k in ("object F1", "colour F1", "count acc"))
    assert grounded["counts"]["samples"] == 14 and grounded["ci95"]["object F1"] == [1.0, 1.0]
    assert meta["grounded"]["scene_graphs"] == [str((synth_data / "test/scene.json").resolve())]
    assert "random scenes" in meta["grounded"]["chance_method"]
    chance = meta["grounded"]["chance"]["metrics"]
    assert chance["object F1"] < 1.0 and 0.0 < chance["colour F1"] < 1.0
    meta_c = json.loads((tmp_path / "constant" / "metrics.json").read_text())
    assert meta_c["runs"]["constant"]["grounded"]["metrics"]["object F1"] < 1.0
    _, runs = load_run_dir(tmp_path / "oracle")
    assert runs["oracle"].grounded.stats.shape == (14, len(STATS))

    text = compare_markdown([tmp_path / "oracle", tmp_path / "constant"], n_boot=50)
    assert "| object F1 | -" in text  # paired grounded test: constant - oracle
    assert "| oracle | 14 | **1.0000** [1.0000, 1.0000]" in text  # grounded table with CIs
    md, _ = write_report(tmp_path / "oracle", baselines=[tmp_path / "constant"], examples=1)
    report = md.read_text()
    assert "## Grounded metrics (scene graphs)" in report
    assert "| metric | oracle | constant | chance |" in report


def test_plain_references_have_no_grounded_metrics(tmp_path):
    refs = tmp_path / "refs.tsv"
    refs.write_text("url\tquery\tannotation\nimg/a.jpg\tobjects\ta red disc in front.\n")
    assert find_scene_graphs(refs, ["img/a.jpg"]) is None
    preds = _predictions(tmp_path / "p.csv", [("img/a.jpg", "objects", "a red disc.", "m")])
    meta = score_files(preds, refs, out=tmp_path / "run", metrics=["CIDEr"], n_boot=0)
    assert "grounded" not in meta and not (tmp_path / "run" / "grounded.csv").exists()


def test_scene_graph_errors_are_clear(synth_data, tmp_path):
    with pytest.raises(TableError, match=r"no scene for image 'test/pano_99999\.jpg'"):
        find_scene_graphs(synth_data / "test.tsv", ["test/pano_00018.jpg", "test/pano_99999.jpg"])
    with pytest.raises(TableError, match=r"no scene\.json next to them"):
        find_scene_graphs(synth_data / "test.tsv", ["test/pano_00018.jpg", "other/a.jpg"])


def test_blind_baseline_gets_grounded_metrics(synth_data, tmp_path):
    from panollava.evaluation.baseline import run_blind_baseline

    results = run_blind_baseline(
        synth_data / "train.tsv",
        synth_data / "test.tsv",
        out=tmp_path / "blind",
        protocols=("grouped",),
        metrics=("CIDEr",),
        n_boot=20,
    )
    grounded = results["grouped"]["runs"]["blind"]["grounded"]["metrics"]
    assert 0.0 <= grounded["object F1"] < 1.0 and results["grouped"]["grounded"]["chance"]
