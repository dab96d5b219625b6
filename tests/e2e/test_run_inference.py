"""Trained runs at use time: ``infer --run``, evaluation killed with SIGKILL and resumed, and
evaluation sharded over processes (torchrun and by hand) then merged — all against an
uninterrupted single-process evaluation of the same run."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.config import load_config
from panollava.data.datasets import split_rows

EVAL_ARGS = ["--batch-size", "1", "--max-new-tokens", "8", "--bootstrap", "5"]


def _eval_cmd(run: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "panollava.cli",
        "eval",  # the run's own config.yaml
        "--run",
        str(run),
        *EVAL_ARGS,
        *extra,
    ]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reference(panollava_run: Path, tmp_path_factory) -> Path:
    """``predictions.csv`` of one uninterrupted single-process evaluation (kept aside)."""
    subprocess.run(_eval_cmd(panollava_run), check=True, capture_output=True, text=True)
    keep = tmp_path_factory.mktemp("reference") / "predictions.csv"
    shutil.copy(panollava_run / "eval" / "test" / "predictions.csv", keep)
    shutil.rmtree(panollava_run / "eval")
    return keep


def _infer(args: list[str]):
    return CliRunner().invoke(app, ["infer", *args])


@pytest.mark.e2e
@pytest.mark.parametrize("which", ["panollava_run", "panoadapt_run"])
def test_infer_run_answers_like_eval(which, request, tmp_path):
    """``infer --run`` loads the trained weights and views: the same answer as the evaluation."""
    run: Path = request.getfixturevalue(which)
    cfg = load_config(run / "config.yaml")
    row = split_rows(cfg, "test")[0]
    from panollava.evaluation.run_eval import evaluate_run

    out = evaluate_run(cfg, run, max_new_tokens=8, batch_size=1, n_boot=5)
    expected = {(r["url"], r["query"]): r["prediction"] for r in _rows(out / "predictions.csv")}
    shutil.rmtree(run / "eval")
    res = _infer(
        [
            "--run",
            str(run),
            "--image",
            str(row.image),
            "--query",
            row.query,
            "--max-new-tokens",
            "8",
            "--show-views",
            str(tmp_path),
        ]
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == expected[(row.url, row.query)]
    assert (tmp_path / "views.png").exists()


def test_infer_run_refuses_folders_without_weights(tmp_path, panollava_run):
    res = _infer(["--run", str(tmp_path), "--image", __file__, "--query", "q"])
    assert res.exit_code == 2 and "not a run folder" in " ".join(res.output.split())
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(panollava_run / "config.yaml", fresh / "config.yaml")
    res = _infer(["--run", str(fresh), "--image", __file__, "--query", "q"])
    assert res.exit_code == 2 and "no finished stage" in " ".join(res.output.split())


@pytest.mark.e2e
def test_eval_killed_mid_run_resumes_to_the_same_file(panollava_run, reference):
    total = len(_rows(reference))
    preds = panollava_run / "eval" / "test" / "predictions.csv"
    proc = subprocess.Popen(
        _eval_cmd(panollava_run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if preds.exists() and preds.read_bytes().count(b"\n") >= 2:  # header + >= 1 row
                break
            time.sleep(0.01)
        assert proc.poll() is None, "evaluation ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    written = len(_rows(preds))
    assert 1 <= written < total  # killed mid-run
    subprocess.run(_eval_cmd(panollava_run), check=True, capture_output=True, text=True)
    assert preds.read_bytes() == reference.read_bytes()  # no row lost, duplicated or changed
    assert (preds.parent / "metrics.json").exists()
    shutil.rmtree(panollava_run / "eval")


def _as_dict(path: Path) -> dict[tuple[str, str], str]:
    rows = _rows(path)
    out = {(r["url"], r["query"]): r["prediction"] for r in rows}
    assert len(out) == len(rows)
    return out


@pytest.mark.e2e
def test_eval_sharded_with_torchrun_then_merged(panollava_run, reference):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", *_eval_cmd(panollava_run)[1:]]
    cmd[cmd.index("--run")] = "--run-dir"  # torchrun's parser claims a bare --run
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    out = panollava_run / "eval" / "test"
    shards = sorted(out.glob("predictions.shard-*-of-2.csv"))
    assert len(shards) == 2 and all(_rows(s) for s in shards)
    assert _as_dict(out / "predictions.csv") == _as_dict(reference)
    assert (out / "metrics.json").exists()

    # the same shards merged by hand (`--merge 2`), then a missing shard named in the error
    (out / "predictions.csv").unlink()
    merge = [*_eval_cmd(panollava_run)[3:], "--merge", "2"]
    res = CliRunner().invoke(app, merge)
    assert res.exit_code == 0, res.output
    assert _as_dict(out / "predictions.csv") == _as_dict(reference)
    shards[1].unlink()
    res = CliRunner().invoke(app, merge)
    assert res.exit_code == 2 and "shard-1-of-2" in res.output
    shutil.rmtree(panollava_run / "eval")


@pytest.mark.e2e
def test_export_panoadapt_run_reloads_with_plain_transformers(panoadapt_run, tmp_path):
    import torch
    import transformers

    from panollava.data.sample import PanoSample
    from panollava.inference import Predictor

    predictor = Predictor.from_run(panoadapt_run)
    cfg = predictor.cfg
    _, viewset = predictor.load(split_rows(cfg, "test")[0].image)
    batch = predictor.system.eval_collate()([PanoSample(viewset.pixels, "what is there")])
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    with torch.no_grad():
        before = predictor.system.model.hf_model(**inputs).logits
    res = CliRunner().invoke(
        app, ["export", "--run", str(panoadapt_run), "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 0, res.output
    cls = getattr(transformers, predictor.system.loaded.facts.model_class)
    reloaded = cls.from_pretrained(tmp_path / "x").eval()
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    with torch.no_grad():
        after = reloaded(**inputs).logits
    assert torch.allclose(before, after, atol=1e-4)
    res = CliRunner().invoke(
        app, ["export", "--run", str(panoadapt_run), "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "exists" in res.output
    # the export serves like the run: its panorama.json brings back the views and PanoRoPE
    exported = Predictor.from_family("gemma3", str(tmp_path / "x"), max_new_tokens=8)
    assert exported.cfg.model.family == cfg.model.family and exported.cfg.views == cfg.views
    assert exported.cfg.model.panorope == cfg.model.panorope
    run = Predictor.from_run(panoadapt_run, max_new_tokens=8)
    assert exported.answer(viewset, "what is there") == run.answer(viewset, "what is there")


@pytest.mark.e2e
def test_export_panollava_run_parts(panollava_run, tmp_path):
    import torch
    import transformers
    from safetensors.torch import load_file

    from panollava.inference import Predictor

    model = Predictor.from_run(panollava_run).system.model
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        before = model.llm(input_ids=ids).logits
    res = CliRunner().invoke(
        app, ["export", "--run", str(panollava_run), "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 0, res.output
    llm = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "x" / "llm").eval()
    assert not any("lora" in n for n, _ in llm.named_parameters())
    with torch.no_grad():
        assert torch.allclose(before, llm(input_ids=ids).logits, atol=1e-4)
    vision = transformers.AutoModel.from_pretrained(tmp_path / "x" / "vision")
    assert sum(p.numel() for p in vision.parameters()) == sum(
        p.numel() for p in model.encoder.backbone.parameters()
    )
    heads = load_file(str(tmp_path / "x" / "panollava_heads.safetensors"))
    assert any(k.startswith("resampler.") for k in heads) and any(
        k.startswith("projector.") for k in heads
    )


@pytest.mark.e2e
def test_eval_decodes_each_panorama_once(panollava_run, reference, monkeypatch):
    """Views are cut once per panorama and reused for all its queries (batches of 2 here)."""
    import panollava.data.datasets as datasets
    from panollava.evaluation.run_eval import evaluate_run

    decoded = []
    real = datasets.decode_erp
    monkeypatch.setattr(
        datasets, "decode_erp", lambda path, **kw: decoded.append(path) or real(path, **kw)
    )
    cfg = load_config(panollava_run / "config.yaml")
    out = evaluate_run(cfg, panollava_run, max_new_tokens=8, batch_size=2, n_boot=5)
    rows = _rows(out / "predictions.csv")
    images = {r.image for r in split_rows(cfg, "test")}
    assert len(rows) == len(_rows(reference)) and len(
        {(r["url"], r["query"]) for r in rows}
    ) == len(rows)
    assert len({r["url"] for r in rows}) < len(rows)  # some panoramas have several queries
    assert sorted(decoded) == sorted(images)  # ... yet each was decoded exactly once
    shutil.rmtree(panollava_run / "eval")


@pytest.mark.e2e
def test_predictor_places_model_and_batches_on_its_device_and_dtype(panollava_run):
    import torch

    from panollava.data.sample import PanoSample
    from panollava.inference import Predictor

    predictor = Predictor.from_run(panollava_run, max_new_tokens=4, device="cpu", dtype="bfloat16")
    assert {p.dtype for p in predictor.system.model.parameters()} == {torch.bfloat16}
    _, viewset = predictor.load(split_rows(predictor.cfg, "test")[0].image)
    batch = predictor.to_device(predictor._collate([PanoSample(viewset.pixels, "what is there")]))
    assert batch["pixel_values"].dtype == torch.uint8  # moved as levels: the encoder converts
    floats = PanoSample(viewset.pixels.float() / 255, "what is there")
    batch = predictor.to_device(predictor._collate([floats]))
    assert batch["pixel_values"].dtype == torch.bfloat16  # float pixels follow the model's dtype
    assert batch["input_ids"].dtype == torch.long  # token ids are never cast
    assert isinstance(predictor.answer(viewset, "what is there"), str)  # bf16 generation runs


@pytest.mark.gpu
@pytest.mark.parametrize("which", ["panollava_run", "panoadapt_run"])
def test_predictor_on_cuda_answers_like_cpu(which, request):
    from panollava.inference import Predictor

    run = request.getfixturevalue(which)
    answers = {}
    for device in ("cpu", "cuda"):
        predictor = Predictor.from_run(run, max_new_tokens=8, device=device, dtype="float32")
        rows = split_rows(predictor.cfg, "test")[:3]
        answers[device] = [predictor.answer(predictor.load(r.image)[1], r.query) for r in rows]
    assert answers["cuda"] == answers["cpu"]


@pytest.mark.e2e
@pytest.mark.parametrize("which", ["panollava_run", "panoadapt_run"])
def test_token_budget_counts_image_tokens(which, request):
    """``prompt_overhead`` + query tokens = the real prompt length the model receives."""
    from panollava.data.sample import PanoSample
    from panollava.inference import Predictor

    predictor = Predictor.from_run(request.getfixturevalue(which), max_new_tokens=4)
    row = split_rows(predictor.cfg, "test")[0]
    _, viewset = predictor.load(row.image)
    real = predictor._collate([PanoSample(viewset.pixels, row.query)])["input_ids"].shape[1]
    own = len(predictor.system.tokenizer(row.query, add_special_tokens=False)["input_ids"])
    overhead = predictor.prompt_overhead()
    assert overhead + own == real
    image_tokens = int(
        (
            predictor._collate([PanoSample(viewset.pixels, row.query)])["input_ids"]
            == _image_token_id(predictor)
        ).sum()
    )
    assert image_tokens > 0 and overhead > image_tokens  # image tokens + the chat template


def _image_token_id(predictor) -> int:
    model = predictor.system.model
    if predictor.cfg.model.system == "panollava":
        return model.vision_token_id
    return model.image_token_id


@pytest.mark.e2e
def test_zero_shot_eval_of_an_untrained_recipe(panoadapt_run, tmp_path, caplog):
    """A fresh run folder evaluates the base model, says so, and keeps the resolved config."""
    import logging

    from panollava.evaluation.run_eval import evaluate_run

    cfg = load_config(panoadapt_run / "config.yaml")
    with caplog.at_level(logging.WARNING):
        out = evaluate_run(cfg, tmp_path / "zeroshot", max_new_tokens=4, batch_size=4, n_boot=5)
    assert "zero-shot" in caplog.text
    assert (tmp_path / "zeroshot" / "config.yaml").exists() and (out / "metrics.json").exists()
    assert len(_rows(out / "predictions.csv")) == len(
        {(r.url, r.query) for r in split_rows(cfg, "test")}
    )


@pytest.mark.e2e
def test_panollava_export_answers_like_its_run(panollava_run, tmp_path):
    """``infer --model EXPORT_DIR`` on a PanoLLaVA export: the same answer as ``infer --run``."""
    row = split_rows(load_config(panollava_run / "config.yaml"), "test")[0]
    out = tmp_path / "export"
    res = CliRunner().invoke(app, ["export", "--run", str(panollava_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    ask = ["--image", str(row.image), "--query", row.query, "--max-new-tokens", "8"]
    from_run = _infer(["--run", str(panollava_run), *ask])
    from_export = _infer(["--model", str(out), *ask])
    assert from_run.exit_code == 0, from_run.output
    assert from_export.exit_code == 0, from_export.output
    assert from_export.stdout.splitlines()[0] == from_run.stdout.splitlines()[0]
