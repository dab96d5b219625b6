"""Synthetic panoramas: true spherical geometry, determinism, captions, output passes data check."""

import csv
import json
import math
import time
from collections import Counter

import pytest
import torch
from transformers import AutoTokenizer
from typer.testing import CliRunner

from panollava.cli import app
from panollava.config import load_config
from panollava.data.quic360 import group_pairs, read_split
from panollava.data.synth import SceneOptions, synthesize
from panollava.data.synth_captions import QUERIES, caption_scene, direction_of
from panollava.data.synth_scene import (
    COLORS,
    SceneObject,
    SynthScene,
    render_scene,
    sample_scene,
    shape_mask,
)
from panollava.data.tokenizer import words_of
from panollava.geometry import erp_to_lonlat, lonlat_to_xyz, project_to_view, view_to_pixel
from panollava.views import build_viewset
from panollava.views.schema import ViewsConfig

runner = CliRunner()


def _color_mask(img: torch.Tensor, color: str, tol: float = 0.12) -> torch.Tensor:
    """``(3, H, W)`` -> ``(H, W)`` pixels within ``tol`` of a palette colour (any shading)."""
    ref = torch.tensor(COLORS[color], dtype=torch.float32).view(3, 1, 1) / 255
    return ((img - ref).abs().amax(0) <= tol + 0.1 * ref.amax()).bool()


def _angles_to(img_hw, yaw_deg, pitch_deg) -> torch.Tensor:
    """Angular distance (degrees) of every ERP pixel centre to a direction, ``(H, W)``."""
    h, w = img_hw
    y, x = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
    d = lonlat_to_xyz(*erp_to_lonlat(x, y, h, w))
    c = lonlat_to_xyz(
        torch.tensor(math.radians(yaw_deg)).double(), torch.tensor(math.radians(pitch_deg)).double()
    )
    return torch.rad2deg(torch.acos((d @ c).clamp(-1, 1)))


def _one(obj: SceneObject) -> SynthScene:
    return SynthScene("outdoor", sky="clear", ground="grass", objects=(obj,))


def test_disc_lands_where_the_geometry_says():
    """A disc of radius 10° at yaw 90°, pitch 20° covers exactly the spherical cap around it."""
    img = render_scene(_one(SceneObject("disc", "red", 90.0, 20.0, 10.0)), 512)  # (3, 256, 512)
    red = _color_mask(img, "red")
    ang = _angles_to((256, 512), 90.0, 20.0)
    px = 360.0 / 512  # degrees per pixel
    assert red[ang < 10.0 - px].all()
    assert not red[ang > 10.0 + px].any()
    x = round((90 / 360 + 0.5) * 512 - 0.5)
    y = round((0.5 - 20 / 180) * 256 - 0.5)
    assert red[y, x] and red.sum() > 100


def test_object_appears_in_the_expected_view():
    img = render_scene(_one(SceneObject("square", "blue", 90.0, 20.0, 12.0)), 1024)
    cfg = ViewsConfig(tile_size=128)  # anyres_e2p: global + 8 tiles at yaw 0, 45, ...
    views = build_viewset(img, cfg)
    by_yaw = {round(v.yaw_deg) % 360: v for v in views.views if v.kind == "tile"}
    tile = by_yaw[90]
    blue = _color_mask(views.pixels[tile.index], "blue")
    centre = lonlat_to_xyz(torch.tensor(math.radians(90.0)), torch.tensor(math.radians(20.0)))
    xn, yn, inside = project_to_view(tile.geometry, centre)
    px, py = view_to_pixel(tile.geometry, xn, yn, (128, 128))
    assert inside and blue[round(float(py)), round(float(px))]
    rows, cols = torch.nonzero(blue, as_tuple=True)
    assert abs(cols.float().mean() - px) < 2.0 and abs(rows.float().mean() - py) < 3.0
    assert float(py) < 64  # pitch +20° is above the horizon: upper half of the tile
    assert not _color_mask(views.pixels[by_yaw[270].index], "blue").any()  # opposite side


def test_seam_straddling_object_is_whole_on_both_sides():
    img = render_scene(_one(SceneObject("disc", "green", 179.0, 0.0, 8.0)), 512)
    green = _color_mask(img, "green")
    assert green[:, :10].any() and green[:, -10:].any()
    ang = _angles_to((256, 512), 179.0, 0.0)
    assert green[ang < 8.0 - 0.8].all()


@pytest.mark.parametrize("shape", ["disc", "ring", "square", "triangle", "star"])
def test_shape_masks_are_centred_and_bounded(shape):
    u, v = torch.meshgrid(
        torch.linspace(-1.2, 1.2, 241), torch.linspace(-1.2, 1.2, 241), indexing="xy"
    )
    m = shape_mask(shape, u, v)
    assert not m[(u * u + v * v) > 1.0 + 1e-6].any()  # inside the circumcircle
    area = m.float().mean() * 2.4**2
    assert {"disc": 3.0, "ring": 1.9, "square": 1.9, "triangle": 1.2, "star": 0.8}[shape] < area
    assert m[120, 120] == (shape != "ring")  # centre


def test_scenes_are_deterministic_and_varied():
    assert sample_scene(5, 17) == sample_scene(5, 17)
    assert sample_scene(5, 17) != sample_scene(5, 18) != sample_scene(6, 17)
    scenes = [sample_scene(0, i) for i in range(200)]
    straddling = [o for s in scenes for o in s.objects if abs(o.yaw_deg) > 180 - o.size_deg]
    small = [o for s in scenes for o in s.objects if o.small]
    assert len(straddling) > 30 and len(small) > 50
    assert {s.kind for s in scenes} == {"outdoor", "room"}
    for s in scenes:
        assert len({o.color for o in s.objects}) == len(s.objects) >= 2


def test_captions_are_short_image_dependent_and_ordered():
    scene = SynthScene(
        "room",
        wall="beige",
        floor="brown",
        objects=(
            SceneObject("star", "blue", 100.0, 0.0, 15.0),
            SceneObject("disc", "red", -10.0, 0.0, 20.0),
            SceneObject("ring", "yellow", 180.0, 30.0, 5.0),
        ),
    )
    caps = caption_scene(scene)
    assert set(caps) == set(QUERIES)
    assert caps["objects"][0] == (
        "a red disc in front, a blue star on the right and a yellow ring behind the viewer."
    )
    assert (
        caps["objects"][2] == "going right from the front: a red disc, a blue star, a yellow ring."
    )
    assert caps["colors"][0] == "the objects are red, yellow and blue."
    assert caps["shapes"][0] == "there is a disc, a ring and a star."
    assert caps["layout"][0] == "the red disc is to the left of the blue star."
    assert caps["small objects"][0] == "the small object is a yellow ring behind the viewer."
    assert caps["location"][0] == "this is a room with beige walls and a brown floor."
    for scene in [sample_scene(1, i) for i in range(100)]:
        for texts in caption_scene(scene).values():
            assert all(len(t.split()) <= 23 for t in texts)
    assert direction_of(-179.0) == direction_of(181.0) == "behind the viewer"


def test_captions_depend_on_the_image_not_the_query_alone():
    """A blind model can only learn one caption per query: it must be rarely right."""
    scenes = [sample_scene(2, i) for i in range(300)]
    per_query = {q: Counter() for q in QUERIES}
    for scene in scenes:
        for q, texts in caption_scene(scene).items():
            per_query[q][texts[0]] += 1
    limits = {"objects": 0.02, "colors": 0.1, "shapes": 0.15, "layout": 0.05, "location": 0.25}
    for q, limit in limits.items():
        top = per_query[q].most_common(1)[0][1]
        assert top / len(scenes) < limit, (q, per_query[q].most_common(1))
    vocab = {w for c in per_query.values() for t in c for w in words_of(t)}
    assert len(vocab) < 80  # a small, consistent vocabulary


def test_synth_output_passes_data_check(synth_dir):
    for split in ("train", "valid", "test"):
        result = runner.invoke(app, ["data", "check", str(synth_dir / f"{split}.tsv")])
        assert result.exit_code == 0, result.output
    train = read_split([synth_dir / "train.tsv"])
    assert len(train) == 8 * len(QUERIES)
    assert all(r.url.startswith("train/") and r.image.is_file() for r in train)
    groups = group_pairs(read_split([synth_dir / "test.tsv"]))
    assert len(groups) == len(QUERIES) and all(len(g.references) >= 3 for g in groups)
    meta = json.loads((synth_dir / "test" / "scene.json").read_text())
    assert meta["width"] == 256 and len(meta["scenes"]) == 1 and meta["scenes"][0]["objects"]
    cfg = load_config(synth_dir / "data.yaml")
    assert cfg.data.train == [synth_dir / "train.tsv"] and cfg.data.test == [synth_dir / "test.tsv"]
    tok = AutoTokenizer.from_pretrained(synth_dir / "tokenizer")
    texts = [r.reference for r in read_split([synth_dir / f"{s}.tsv" for s in ("train", "test")])]
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    assert all(tok.unk_token_id not in seq for seq in ids)


def test_synth_is_deterministic(tmp_path, synth_dir):
    synthesize(tmp_path, n=10, seed=3, width=256, tokenizer=False)
    for name in ("train.tsv", "test.tsv", "train/pano_00000.jpg", "test/scene.json"):
        assert (tmp_path / name).read_bytes() == (synth_dir / name).read_bytes()


def test_cli_synth(tmp_path):
    result = runner.invoke(
        app, ["data", "synth", "--out", str(tmp_path), "--n", "3", "--width", "128"]
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "train.tsv").open() as fh:
        assert next(csv.reader(fh, delimiter="\t")) == ["url", "query", "annotation"]
    assert runner.invoke(app, ["data", "synth", "--out", str(tmp_path), "--n", "2"]).exit_code == 2


@pytest.mark.slow
def test_synth_400_panoramas_in_well_under_a_minute(tmp_path):
    t0 = time.perf_counter()
    result = synthesize(tmp_path, n=400, seed=0, width=1024)
    seconds = time.perf_counter() - t0
    assert result.images == {"train": 320, "valid": 40, "test": 40}
    assert seconds < 45, f"400 panoramas took {seconds:.1f} s"
    counts = Counter(r.query for r in read_split([tmp_path / "train.tsv"]))
    assert set(counts.values()) == {320}


def test_default_scenes_are_those_of_earlier_versions():
    """Scene control must not change the default scenes (pinned from the generator before it)."""
    assert caption_scene(sample_scene(0, 0))["objects"][0] == (
        "a purple star behind the viewer and a black disc on the left."
    )
    assert caption_scene(sample_scene(0, 1))["layout"][0] == (
        "the orange triangle is to the left of the black disc."
    )


def test_seam_and_pole_shares_raise_those_objects():
    def shares(**options) -> tuple[float, float]:
        scenes = [sample_scene(9, i, **options) for i in range(200)]
        seam = sum(any(o.seam for o in s.objects) for s in scenes) / len(scenes)
        pole = sum(any(o.pole for o in s.objects) for s in scenes) / len(scenes)
        return seam, pole

    seam0, pole0 = shares()
    assert pole0 == 0.0 and 0.3 < seam0 < 0.6  # 35% forced, a few more by chance
    seam1, pole1 = shares(seam_share=0.8, pole_share=0.5)
    assert seam1 > seam0 + 0.3 and 0.4 < pole1 < 0.6
    assert shares(seam_share=0.0)[0] < 0.25  # about 17% cross it by chance
    for subset in ("seam", "pole", "small"):
        scenes = [sample_scene(9, i, force=subset) for i in range(50)]
        assert all(any(o.in_subset(subset) for o in s.objects) for s in scenes)
    with pytest.raises(ValueError, match="pole_share"):
        sample_scene(0, 0, pole_share=1.5)


def test_object_scale_enlarges_only_the_objects_that_are_not_small():
    plain = [sample_scene(5, i) for i in range(60)]
    big = [sample_scene(5, i, object_scale=1.75) for i in range(60)]
    radii = [o.size_deg for s in plain for o in s.objects if not o.small]
    big_radii = [o.size_deg for s in big for o in s.objects if not o.small]
    assert min(radii) >= 10.0 and max(radii) <= 22.0
    assert min(big_radii) >= 17.5 and max(big_radii) <= 1.75 * 22.0
    small = [o.size_deg for s in big for o in s.objects if o.small]
    assert small and max(small) <= 7.0  # small objects stay small: the subset keeps its meaning
    assert all(2 <= len(s.objects) <= 3 for s in big)
    for bad in (0.5, 2.5):
        with pytest.raises(ValueError, match="object_scale must be in"):
            sample_scene(0, 0, object_scale=bad)
    result = runner.invoke(
        app,
        ["data", "synth", "--out", "/nonexistent/x", "--n", "3", "--object-scale", "3"],
    )
    assert result.exit_code == 2 and "object_scale must be in [1, 2.0]" in result.output


def test_small_share_sets_the_chance_of_small_objects_and_moves_nothing_else():
    plain = [sample_scene(2, i) for i in range(80)]
    same = [sample_scene(2, i, small_share=0.3) for i in range(80)]
    assert same == plain  # the default is today's scenes, draw for draw
    none = [sample_scene(2, i, small_share=0.0) for i in range(80)]
    share = sum(o.small for s in plain for o in s.objects) / sum(len(s.objects) for s in plain)
    assert 0.2 < share < 0.4
    assert not any(o.small for s in none for o in s.objects)
    # the first object (never re-drawn for a collision) keeps its colour, shape and pitch
    for a, b in zip(plain, none, strict=True):
        (x, y), keep = (a.objects[0], b.objects[0]), ("color", "shape", "pitch_deg")
        assert [getattr(x, k) for k in keep] == [getattr(y, k) for k in keep]
    forced = sample_scene(2, 0, small_share=0.0, force="small")
    assert forced.objects[0].small  # a requested small object still comes
    everything = [sample_scene(2, i, small_share=1.0) for i in range(20)]
    assert all(o.small for s in everything for o in s.objects)
    with pytest.raises(ValueError, match=r"small_share must be in \[0, 1\]"):
        sample_scene(0, 0, small_share=1.5)
    bad = runner.invoke(
        app, ["data", "synth", "--out", "/nonexistent/x", "--n", "3", "--small-share", "-0.1"]
    )
    assert bad.exit_code == 2 and "small_share must be in [0, 1]" in bad.output


def test_test_subset_changes_only_the_test_split(tmp_path, synth_dir):
    out = tmp_path / "pole"
    synthesize(
        out, n=10, seed=3, width=256, tokenizer=False, options=SceneOptions(test_subset="pole")
    )
    meta = json.loads((out / "test" / "scene.json").read_text())
    assert meta["options"] == {
        "seam_share": 0.35,
        "pole_share": 0.0,
        "test_subset": "pole",
        "object_scale": 1.0,
        "small_share": 0.3,
    }
    assert all(any(o["pole"] for o in s["objects"]) for s in meta["scenes"])
    assert (out / "train.tsv").read_bytes() == (synth_dir / "train.tsv").read_bytes()
    assert (out / "test.tsv").read_bytes() != (synth_dir / "test.tsv").read_bytes()
    assert "--test-subset pole" in (out / "data.yaml").read_text()


def test_cli_synth_scene_control(tmp_path):
    args = ["data", "synth", "--out", str(tmp_path), "--n", "10", "--width", "64", "--no-tokenizer"]
    result = runner.invoke(
        app, [*args, "--seam-share", "0.5", "--pole-share", "0.3", "--test-subset", "seam"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "test" / "scene.json").read_text())
    assert meta["options"] == {
        "seam_share": 0.5,
        "pole_share": 0.3,
        "test_subset": "seam",
        "object_scale": 1.0,
        "small_share": 0.3,
    }
    assert all(any(o["seam"] for o in s["objects"]) for s in meta["scenes"])
    bad = runner.invoke(app, [*args, "--test-subset", "poles"])
    assert bad.exit_code == 2 and "test_subset must be one of" in bad.output
    bad = runner.invoke(app, [*args, "--seam-share", "1.5"])
    assert bad.exit_code == 2 and "seam_share must be in [0, 1]" in bad.output
