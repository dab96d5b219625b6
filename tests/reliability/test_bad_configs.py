"""Hostile configs: refused at load time with the key, the limit and the fix (never a traceback
later, never an unbounded run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("views.overlap=0.999", "views"),
        ("views.num_tiles=100000", "views"),
        ("views.pitch_deg=[0,10,20,30,40,50,60,70,80]", "views"),
    ],
)
def test_view_count_is_bounded_at_config_time(override, named):
    """overlap 0.999 (4,000 tiles) or num_tiles 100000 used to run > 300 s at 5-6 GB."""
    with pytest.raises(ConfigError, match=r"views.*at most 64 views"):
        load_config(None, ["views.strategy=e2p", override])


def test_anyres_grid_of_zero_is_refused_not_a_zero_division():
    with pytest.raises(ConfigError, match="anyres_grid"):
        load_config(None, ["views.strategy=anyres", "views.anyres_grid=[0,0]"])


def test_anyres_grid_is_bounded_like_the_other_views():
    with pytest.raises(ConfigError, match="at most 64 views"):
        load_config(None, ["views.strategy=anyres", "views.anyres_grid=[100,100]"])


@pytest.mark.parametrize("value", ["inf", ".inf", ".nan"])
def test_infinite_or_nan_learning_rate_is_refused(value):
    with pytest.raises(ConfigError, match=r"train\.stages\.0\.lr"):
        load_config(None, ["train.stages=[{name: a}]", f"train.stages.0.lr={value}"])


def test_negative_seed_is_refused():
    with pytest.raises(ConfigError, match="seed"):
        load_config(None, ["seed=-1"])


@pytest.mark.parametrize("name", ["../../../etc", "a/b", "..", "/abs", ""])
def test_experiment_name_cannot_leave_the_output_folder(name):
    """`experiment=../../../etc` used to put the run folder outside output_dir."""
    with pytest.raises(ConfigError, match="experiment"):
        load_config(None, [f"experiment='{name}'"])


def test_yaml_duplicate_key_is_an_error_naming_key_and_line(tmp_path):
    """Duplicate keys used to take the last value silently."""
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\nviews:\n  fov_deg: 60\n  fov_deg: 90\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"duplicate key 'fov_deg'.*line 4"):
        load_config(path)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    """A 1 KB 'billion laughs' YAML used to run > 60 s at 4 GB."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for k in range(1, 9):
        refs = ",".join([f"*a{k - 1}"] * 9)
        lines.append(f"a{k}: &a{k} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size < 2048
    with pytest.raises(ConfigError, match="alias bomb"):
        load_config(path)


def test_train_with_no_stages_exits_2_before_any_model():
    from pathlib import Path

    from typer.testing import CliRunner

    from panollava.cli import app

    config = Path(__file__).resolve().parents[2] / "configs" / "panollava" / "tiny.yaml"
    result = CliRunner().invoke(app, ["train", str(config), "train.stages=[]"])
    assert result.exit_code == 2 and "train.stages is empty" in result.output, result.output


def test_a_config_that_is_not_utf8_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("experiment: café\n".encode("latin-1"))
    result = CliRunner().invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 1
    assert "latin1.yaml" in result.output and "UTF-8" in result.output
    assert "iconv" in result.output and "Traceback" not in result.output


TINY = Path(__file__).resolve().parents[2] / "configs" / "panollava" / "tiny.yaml"
# (its stage 0 trains the overlap loss alone, weight 1.0)


@pytest.mark.parametrize(
    "views",
    [
        ["views.strategy=resize"],
        ["views.strategy=native"],
        ["views.strategy=cubemap"],  # faces meet edge to edge: no overlap
        ["views.fov_deg=90", "views.num_tiles=4"],  # 4 x 90°: no overlap
    ],
)
def test_overlap_loss_without_overlapping_views_is_refused(views):
    """An overlap loss on views that do not overlap used to be accepted: alone it failed at the
    first step ('the loss's gradient reaches no trainable parameter'), next to the LM loss it
    silently did nothing."""
    with pytest.raises(ConfigError, match=r"train\.stages\.0\.overlap_weight=1.*overlap"):
        load_config(TINY, views)
    joint = ["train.stages.0.lm_weight=1.0", "train.stages.0.overlap_weight=0.1", *views]
    with pytest.raises(ConfigError, match=r"train\.stages\.0\.overlap_weight=0\.1"):
        load_config(TINY, joint)
    off = [f"train.stages.{i}.overlap_weight=0.0" for i in range(3)]
    assert load_config(TINY, [*views, *off, "train.stages.0.lm_weight=1.0"]).views.strategy


def test_overlapping_tiles_keep_their_overlap_loss():
    cfg = load_config(TINY, ["views.fov_deg=100", "views.num_tiles=4"])  # 10% overlap
    assert cfg.train.stages[0].overlap_weight == 1.0
