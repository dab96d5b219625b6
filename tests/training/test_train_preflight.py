"""``train`` checks what it can before any model loads (a real recipe's model is a hub download
of gigabytes): the run to resume, the tables and their images. A refusal is one clear exit-2
message and leaves no run folder behind."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from panollava.cli import app

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "panoadapt" / "qwen2_5_vl_3b_anyres_e2p.yaml"
runner = CliRunner()


def test_resume_without_an_earlier_run_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(RECIPE), f"output_dir={tmp_path}", "--resume"])
    assert result.exit_code == 2, result.output
    assert "to resume" in result.output
    assert "Traceback" not in result.output


def test_missing_images_are_refused_before_the_model_loads_and_no_run_folder_is_left(
    tmp_path: Path,
) -> None:
    table = tmp_path / "train.tsv"
    table.write_text("url\tquery\tannotation\nnot_there.jpg\twhat is left?\ta door\n")
    result = runner.invoke(
        app,
        [
            "train",
            str(RECIPE),
            f"output_dir={tmp_path / 'runs'}",
            f"data.train=[{table}]",
            "data.valid=[]",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "not_there.jpg" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_gpu_precision_on_cpu_is_refused_before_the_model_loads(
    tmp_path: Path, monkeypatch
) -> None:
    # A published recipe trains in bf16-mixed; asked to run it on the CPU, train used to build
    # the model first (minutes for a real checkpoint) and then stop with a traceback.
    import panollava.models.build

    def no_model(cfg):
        raise AssertionError("the model was built before the precision was checked")

    monkeypatch.setattr(panollava.models.build, "build_system", no_model)
    samples = REPO.parent / "shared" / "data" / "quic360_samples"
    result = runner.invoke(
        app,
        [
            "train",
            str(RECIPE),
            f"output_dir={tmp_path / 'runs'}",
            f"data.train=[{samples / 'samples.csv'}]",
            f"data.image_root={samples}",
            "data.valid=[]",
            "data.test=[]",
            "train.accelerator=cpu",
            "train.precision=bf16-mixed",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "bf16-mixed needs a GPU" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
