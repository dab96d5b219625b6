"""Pure parts of ``grid`` and ``ablate``: row labels, reference rows, the results tables with CIs
and paired tests, the training fingerprint, statistics over seeds, and the shipped suites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from panollava.config import load_config
from panollava.evaluation.ablation import (
    AblationRecord,
    ablation_markdown,
    aggregate,
    image_paired_tests,
    load_suite,
    mean_ci,
    paired_seed_test,
    run_metrics,
    suite_entries,
    t_quantile,
    t_two_sided_p,
)
from panollava.evaluation.grid import config_changes, train_fingerprint
from panollava.evaluation.grid_tables import (
    GridEntry,
    GridRow,
    method_label,
    model_label,
    reference_rows,
    results_csv_rows,
    results_markdown,
)
from panollava.evaluation.metrics import CaptionScores
from panollava.evaluation.samples import SampleSet
from panollava.evaluation.scoring import LoadedRun

REPO = Path(__file__).resolve().parents[2]
TINY_ADAPT = REPO / "configs" / "panoadapt_tiny" / "qwen2_5_vl_tiny.yaml"
TINY_LLAVA = REPO / "configs" / "panollava" / "tiny.yaml"


def test_labels_follow_what_the_config_switches_on() -> None:
    adapt = load_config(TINY_ADAPT)
    assert model_label(adapt) == "qwen2_5_vl (tiny)"
    assert method_label(adapt) == "anyres_e2p +PanoRoPE +VICReg-pw"
    native = load_config(
        TINY_ADAPT,
        ["views.strategy=native", "model.panorope=false", "train.stages.0.overlap_weight=0"],
    )
    assert method_label(native) == "native"
    llava = load_config(TINY_LLAVA, ["model.projector.stitching=stride_views"])
    assert model_label(llava) == "PanoLLaVA (tiny)"
    assert method_label(llava) == "anyres_e2p +MV-PE +stride_views +VICReg-pw"
    published = load_config(REPO / "configs/panoadapt/gemma3_4b_anyres_e2p_panorope_densecl.yaml")
    assert (model_label(published), method_label(published)) == (
        "gemma3",
        "anyres_e2p +PanoRoPE +DenseCL",
    )


def test_reference_is_the_native_row_else_the_first_row_of_the_family() -> None:
    rows = [("qwen", "resize"), ("qwen", "native"), ("PanoLLaVA", "anyres_e2p"), ("qwen", "x")]
    assert reference_rows(rows) == {"qwen": (1, True), "PanoLLaVA": (2, False)}


def _run(name: str, cider: list[float], urls: list[str], *, spice: bool = False) -> LoadedRun:
    samples = SampleSet(run=name, protocol="per_row", counts={"samples": len(cider)})
    for i, (c, url) in enumerate(zip(cider, urls, strict=True)):
        samples.add(f"s{i}", url, "q", f"pred {c}", ["ref"])
    values = np.asarray(cider)
    scores = CaptionScores(corpus={"CIDEr": float(values.mean())}, per_sample={"CIDEr": values})
    entry = {
        "metrics": {"CIDEr": float(values.mean()), "SPICE": None},
        "ci95": {"CIDEr": [float(values.min()), float(values.max())]},
        "unavailable": {} if spice else {"SPICE": "CoreNLP 3.6.0 jars not found"},
        "counts": {"samples": len(cider)},
    }
    return LoadedRun(name, Path(name), "per_row", entry, samples, scores)


def _rows() -> tuple[list[GridRow], dict[str, list[LoadedRun]]]:
    urls = ["a", "a", "b", "c", "d", "e"]
    rows = [
        GridRow(GridEntry("q_e2p", Path("e2p.yaml")), "qwen", "anyres_e2p", Path("r1")),
        GridRow(GridEntry("q_nat", Path("nat.yaml")), "qwen", "native", Path("r2")),
    ]
    runs = [
        _run("q_e2p", [0.5, 0.6, 0.7, 0.9, 0.4, 0.8], urls),
        _run("q_nat", [0.4, 0.5, 0.5, 0.6, 0.3, 0.6], urls),
    ]
    return rows, {"per_row": runs}


def test_results_table_has_cis_na_spice_and_the_paired_test_against_native() -> None:
    rows, runs = _rows()
    md = results_markdown(rows, runs, n_boot=200)
    assert "| qwen | anyres_e2p | 6 | – | – | – | 0.6500 [0.4000, 0.9000] | n/a |" in md
    assert "qwen: native (native row)" in md
    assert "n/a — SPICE: CoreNLP 3.6.0 jars not found" in md
    paired = next(
        line for line in md.splitlines() if line.startswith("| qwen | anyres_e2p | native")
    )
    assert "+0.1667 [" in paired and "p=" in paired  # 0.65 - 0.4833 on the same samples
    records = results_csv_rows(rows, runs, n_boot=200)
    assert [r["reference"] for r in records] == ["native", "native"]
    assert records[0]["CIDEr diff"] == pytest.approx(0.65 - 2.9 / 6)
    assert records[0]["CIDEr diff lo"] > 0  # every image improves: the CI excludes 0
    assert records[0]["CIDEr p"] < 0.05
    assert records[1]["CIDEr diff"] is None  # the native row is the reference


def test_runs_on_different_samples_are_not_paired_and_say_why() -> None:
    rows, runs = _rows()
    runs["per_row"][1] = _run("q_nat", [0.1, 0.2], ["a", "b"])
    md = results_markdown(rows, runs, n_boot=50)
    assert "no paired test: not the same samples" in md
    rows, runs = _rows()
    runs["per_row"] = [_run(r.name, [0.1, 0.2], ["a", "a"]) for r in runs["per_row"]]
    assert "no paired test: one test image" in results_markdown(rows, runs, n_boot=50)


def test_training_fingerprint_ignores_output_dir_and_test_tables(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_text("url\tquery\tannotation\na.jpg\tq\tx\n")
    base = [f"data.train=[{train}]", "output_dir=/a", "data.test=[/t1.tsv]"]
    a = train_fingerprint(load_config(TINY_ADAPT, base))
    moved = train_fingerprint(load_config(TINY_ADAPT, [*base, "output_dir=/b", "data.test=[/t2]"]))
    assert a == moved
    assert a != train_fingerprint(load_config(TINY_ADAPT, [*base, "train.stages.0.lr=0.5"]))
    changed = train_fingerprint(load_config(TINY_ADAPT, [*base, "train.stages.0.lr=0.5"]))
    assert config_changes(a, changed) == ["config.train.stages.0.lr: 0.001 -> 0.5"]
    train.write_text("url\tquery\tannotation\na.jpg\tq\ty\n")  # same path, new content
    assert a != train_fingerprint(load_config(TINY_ADAPT, base))


def test_t_distribution_matches_the_textbook_table() -> None:
    # two-sided 95% critical values of Student's t (any statistics table)
    for df, t in ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (10, 2.228), (30, 2.042)):
        assert t_quantile(0.95, df) == pytest.approx(t, abs=1e-3)
        assert t_two_sided_p(t, df) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(0.0, 3) == pytest.approx(1.0)


def test_seed_statistics() -> None:
    stats = mean_ci([1.0, 2.0, 3.0])
    assert stats.mean == 2.0 and stats.hi - stats.mean == pytest.approx(4.303 / np.sqrt(3), 1e-3)
    assert mean_ci([5.0]).lo is None  # one seed: no interval
    test = paired_seed_test([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])  # differences 1, 1, 2: t = 4, df 2
    assert test.mean == pytest.approx(4 / 3)
    assert test.p == pytest.approx(0.05719, abs=1e-4)
    assert test.hi - test.mean == pytest.approx(1.4342, abs=1e-3)
    noise = paired_seed_test([7.3e-9, 7.3e-9], [1.7e-13, 1.8e-13])  # BLEU-4 smoothing residue
    assert noise.mean == 0.0 and noise.p == 1.0
    with pytest.raises(ValueError, match="same seeds"):
        paired_seed_test([1.0], [1.0, 2.0])


def test_run_metrics_takes_every_numeric_score_so_later_sections_flow_in() -> None:
    metrics_json = {
        "runs": {
            "x": {
                "metrics": {"CIDEr": 1.5, "SPICE": None, "BLEU-4": 0.25},
                "ci95": {"CIDEr": [1.0, 2.0]},
                "counts": {"samples": 7},
                "unavailable": {"SPICE": "no jars"},
                "grounded": {  # as evaluation.grounded.grounded_entry writes it
                    "metrics": {"object F1": 0.5, "seam recall": 0.25, "pole recall": None},
                    "ci95": {"object F1": [0.25, 0.75]},
                    "counts": {"samples": 7, "colors": 1},
                },
            }
        }
    }
    assert run_metrics(metrics_json) == {
        "CIDEr": 1.5,
        "BLEU-4": 0.25,
        "grounded.object F1": 0.5,
        "grounded.seam recall": 0.25,
    }


def test_aggregate_and_markdown_over_seeds() -> None:
    records = [
        AblationRecord("fam", v, s, {"CIDEr": c, "grounded.seam recall": c / 2, "grounded.x": 1.0})
        for v, values in (("base", [1.0, 2.0, 3.0]), ("off", [0.0, 1.0, 1.0]))
        for s, c in zip((0, 1, 2), values, strict=True)
    ]
    rows = aggregate(records, {"fam": "base"})
    by = {(r["variant"], r["metric"]): r for r in rows}
    assert by["base", "CIDEr"]["mean"] == 2.0 and by["base", "CIDEr"]["diff"] is None
    assert by["off", "CIDEr"]["diff"] == pytest.approx(-4 / 3)
    assert by["off", "CIDEr"]["p"] == pytest.approx(0.05719, abs=1e-4)
    assert by["off", "grounded.seam recall"]["diff"] == pytest.approx(-2 / 3)
    md = ablation_markdown(rows, seeds=[0, 1, 2])
    assert "## fam (baseline: base)" in md
    assert "| variant | CIDEr | grounded.seam recall |" in md  # headline grounded metrics only
    assert "| base | 2.0000 ± 2.4841 |" in md  # 4.303 * 1 / sqrt(3)
    assert "| off | -1.3333 [-2.7676, +0.1009] p=0.057 |" in md


def _per_sample_csv(path: Path, cider: list[float]) -> Path:
    lines = ["run,sample_id,url,CIDEr"]
    lines += [f"r,s{i},img{i // 2},{c}" for i, c in enumerate(cider)]  # two samples per image
    path.write_text("\n".join(lines) + "\n")
    return path


def test_image_paired_test_averages_seeds_and_resamples_images(tmp_path: Path) -> None:
    base = [0.2, 0.3, 0.1, 0.4, 0.2, 0.3]
    files = {("f", "base", s): _per_sample_csv(tmp_path / f"b{s}.csv", base) for s in (0, 1)}
    files["f", "up", 0] = _per_sample_csv(tmp_path / "u0.csv", [c + 0.1 for c in base])
    files["f", "up", 1] = _per_sample_csv(tmp_path / "u1.csv", [c + 0.3 for c in base])
    tests = image_paired_tests(files, {"f": "base"}, n_boot=200)
    up = tests["f", "up", "CIDEr"]
    assert up.n == 2 and up.mean == pytest.approx(0.2)  # seed mean of +0.1 and +0.3
    assert up.lo == pytest.approx(0.2) and up.hi == pytest.approx(0.2)  # same gain everywhere
    assert up.p == 0.0
    rows = aggregate(
        [AblationRecord("f", v, s, {"CIDEr": 1.0}) for v in ("base", "up") for s in (0, 1)],
        {"f": "base"},
        tests,
    )
    md = ablation_markdown(rows, seeds=[0, 1])
    assert "| up | CIDEr | +0.2000 [+0.2000, +0.2000] | 0.000 |" in md
    one = {k: _per_sample_csv(tmp_path / f"one{k[1]}{k[2]}.csv", [0.1, 0.2]) for k in files}
    assert image_paired_tests(one, {"f": "base"}, n_boot=50) == {}  # one image: no test


@pytest.mark.parametrize(
    "suite", sorted((REPO / "configs" / "ablation").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_suites_expand_into_valid_configs(suite: Path, tmp_path: Path) -> None:
    assert suite.read_text().startswith("# panollava ")  # headed by the command that runs it
    if "families:" not in suite.read_text():
        load_config(suite)  # a recipe the suites use
        return
    loaded = load_suite(suite)
    keyed = suite_entries(loaded, tmp_path / "data", loaded.seeds)
    assert len(keyed) == len(loaded.seeds) * sum(len(f.variants) for f in loaded.families.values())
    methods = {}
    for (family, _variant, seed), entry in keyed:
        cfg = load_config(entry.recipe, list(entry.overrides))
        assert cfg.seed == seed
        methods.setdefault(family, set()).add(method_label(cfg))
    for family, labels in methods.items():  # every variant changes what it says it changes
        assert len(labels) == len(loaded.families[family].variants), (family, labels)


def test_suite_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"seeds": [0], "families": {"f": {"recipe": "r.yaml", "baseline": "b", "variants": {}}}}
        )
    )
    with pytest.raises(ValueError, match="baseline 'b' is not one of"):
        load_suite(bad)
