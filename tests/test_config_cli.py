"""Config schema (strict, dotted overrides) and the CLI commands of the foundation."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.config import ConfigError, apply_overrides, load_config

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


SUITES = sorted((REPO / "configs" / "ablation").glob("*.yaml"))
SUITES = [p for p in SUITES if "families:" in p.read_text()]  # `panollava ablate` suites


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_config_in_the_repo_validates(path):
    assert path.read_text().startswith("# "), "each YAML starts with the command that runs it"
    if path in SUITES:  # checked with every variant expanded in tests/evaluation/test_grid_tables
        return
    load_config(path)


def test_unknown_key_names_the_key_and_the_valid_ones(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("views:\n  fov: 60\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    msg = str(info.value)
    assert "unknown key 'views.fov'" in msg and "did you mean 'views.fov_deg'" in msg
    assert "tile_size" in msg  # lists the valid keys


def test_dotted_overrides_parse_yaml_values():
    cfg = load_config(
        None, ["views.fov_deg=60", "views.pitch_deg=[0, 30]", "views.global_view=false"]
    )
    assert (
        cfg.views.fov_deg == 60
        and cfg.views.pitch_deg == [0, 30]
        and cfg.views.global_view is False
    )
    with pytest.raises(ConfigError, match="must look like"):
        apply_overrides({}, ["views.fov_deg"])
    with pytest.raises(ConfigError, match=r"unknown key 'views\.nope'"):
        load_config(None, ["views.nope=1"])


def test_data_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg_file = tmp_path / "sub" / "c.yaml"
    cfg_file.write_text("# panollava config show c.yaml\ndata:\n  train: [../d/train.tsv]\n")
    assert load_config(cfg_file).data.train == [(tmp_path / "d" / "train.tsv").resolve()]


def test_config_cli_validate_and_show(tmp_path):
    good = REPO / "configs" / "views" / "anyres_e2p.yaml"
    assert runner.invoke(app, ["config", "validate", str(good)]).exit_code == 0
    res = runner.invoke(app, ["config", "show", str(good), "views.fov_deg=45"])
    assert res.exit_code == 0 and "fov_deg: 45.0" in res.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("viewz: {}\n")
    res = runner.invoke(app, ["config", "validate", str(bad)])
    assert res.exit_code == 1


def test_views_cli_writes_views_metadata_and_figure(tmp_path, sample_images):
    out = tmp_path / "views"
    res = runner.invoke(
        app,
        [
            "views",
            str(sample_images[2]),
            "--strategy",
            "anyres_e2p",
            "--size",
            "64",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "views.json").read_text())
    assert len(meta["views"]) == 9 and meta["ring_overlap"] == pytest.approx(0.5)
    assert meta["views"][3]["yaw_deg"] == 90 and meta["views"][3]["file"] == "view_03.png"
    assert [8, 1] in meta["pairs"]
    assert (out / "views.png").stat().st_size > 10_000
    assert len(list(out.glob("view_*.png"))) == 9


def test_views_cli_reports_a_missing_image(tmp_path):
    res = runner.invoke(app, ["views", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "file not found" in " ".join(res.output.split())


def test_model_union_errors_name_the_real_path():
    with pytest.raises(ConfigError, match=r"unknown key 'model\.resampler\.typ' \(did you mean"):
        load_config(None, ["model.system=panollava", "model.resampler.typ=mlp"])
    with pytest.raises(
        ConfigError, match=r"unknown key 'model\.foo'; valid keys here: .*checkpoint"
    ):
        load_config(None, ["model.system=panoadapt", "model.family=gemma3", "model.foo=1"])
    cfg = load_config(None, ["model.system=panoadapt", "model.family=qwen2_5_vl"])
    assert cfg.model.resolved_checkpoint() == "Qwen/Qwen2.5-VL-3B-Instruct"


def test_relative_paths_from_overrides_resolve_against_the_working_directory(tmp_path, monkeypatch):
    """YAML paths are relative to the YAML's folder (portable configs); paths typed on the command
    line are relative to where the command runs (``ablate --out outputs/x`` relied on it)."""
    (tmp_path / "configs").mkdir()
    recipe = tmp_path / "configs" / "r.yaml"
    recipe.write_text("data:\n  train: [yaml_rel.tsv]\n  image_root: imgs\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("configs/r.yaml"), ["data.test=[out/test.tsv]", "data.cache_dir=cache"])
    assert cfg.data.train == [tmp_path / "configs" / "yaml_rel.tsv"]
    assert cfg.data.image_root == tmp_path / "configs" / "imgs"
    assert cfg.data.test == [tmp_path / "out" / "test.tsv"]
    assert cfg.data.cache_dir == tmp_path / "cache"
    again = load_config(Path("configs/r.yaml"), ["data.train=[cli.tsv]"])
    assert again.data.train == [tmp_path / "cli.tsv"]
