"""`make demo` end to end at toy size: the demo config, its scenes, the grounded table."""

import json
from pathlib import Path

import pytest

from panollava.config import load_config
from panollava.data.synth_scene import sample_scene
from panollava.demo import CONFIG, DEMO_SCENES, run_demo


def test_demo_config_and_scenes_are_what_the_readme_says():
    cfg = load_config(CONFIG)
    assert cfg.views.num_tiles == 4 and cfg.views.fov_deg == 100.0 and cfg.views.tile_size == 64
    assert cfg.model.tiny.patch_size == 8 and cfg.model.projector.pe is False
    assert [s.max_steps for s in cfg.train.stages] == [20, 1500, 50]
    scenes = [DEMO_SCENES.scene(0, i, "train") for i in range(40)]
    objects = [o for s in scenes for o in s.objects]
    assert not any(o.small for o in objects) and min(o.size_deg for o in objects) >= 17.5
    assert scenes[0] == sample_scene(0, 0, object_scale=1.75, small_share=0.0)


@pytest.mark.e2e
def test_demo_runs_and_reports_the_grounded_columns(tmp_path, capsys):
    steps = [f"train.stages.{i}.{k}=2" for i in range(3) for k in ("max_steps", "batch_size")]
    summary = run_demo(tmp_path, n=12, overrides=[*steps, "train.checkpoint_every_n_steps=2"])
    written = json.loads((tmp_path / "demo_summary.json").read_text())
    assert written["grounded"] == summary["grounded"]
    for who in ("model", "blind", "chance"):
        assert 0.0 <= summary["grounded"][who]["object F1"] <= 1.0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "object F1 (grounded)" in text and "chance (random scene captions)" in text
    assert "the blind baseline" in text
    assert Path(summary["eval_dir"], "report.md").is_file()
