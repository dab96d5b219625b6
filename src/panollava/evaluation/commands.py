"""CLI commands of the evaluation subsystem: ``score``, ``compare``, ``report``, ``baseline blind``
and ``judge``. Thin wrappers over the library functions; heavy imports happen inside."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from panollava.cli_support import (
    BOOTSTRAP_RESAMPLES,
    BootstrapOption,
    DeviceOption,
    DtypeOption,
    MaxNewTokensOption,
    ProgressEveryOption,
    console,
    fail,
    load_config_or_fail,
    split_config_args,
    user_errors,
)

__all__ = ["register"]


class Protocol(str, Enum):
    grouped = "grouped"
    per_row = "per_row"


class BaselineProtocol(str, Enum):
    both = "both"
    grouped = "grouped"
    per_row = "per_row"


MetricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        help="Metric to compute (repeatable): BLEU, METEOR, ROUGE-L, CIDEr, SPICE. Default: all.",
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Bootstrap seed.")]
CoreNLPOpt = Annotated[
    Path | None,
    typer.Option(help="Folder with stanford-corenlp-3.6.0(.jar|-models.jar) to enable SPICE."),
]


@contextmanager
def _clear_errors():
    """Turn the library's input/tool errors into one red line and exit code 2."""
    from panollava.evaluation.javatools import JavaError
    from panollava.evaluation.tables import TableError

    try:
        yield
    except (TableError, JavaError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))


def score_command(
    predictions: Annotated[
        Path, typer.Argument(help="Predictions CSV (url,query,prediction or id,method,prediction).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    references: Annotated[
        Path | None,
        typer.Option(
            help="References TSV/CSV (url, query, annotation); needed for id predictions."
        ),
    ] = None,
    protocol: Annotated[
        Protocol, typer.Option(help="grouped (per image+query) or per_row.")
    ] = Protocol.grouped,
    name: Annotated[
        str | None, typer.Option(help="Run name when the file has no method column.")
    ] = None,
    metric: MetricOpt = None,
    bootstrap: BootstrapOption = BOOTSTRAP_RESAMPLES,
    seed: SeedOpt = 0,
    allow_missing: Annotated[
        bool,
        typer.Option(help="Score only pairs with predictions (count recorded) instead of failing."),
    ] = False,
    corenlp_dir: CoreNLPOpt = None,
) -> None:
    """Score predictions: writes OUT/metrics.json (per run/method) and OUT/per_sample.csv."""
    from panollava.evaluation.compare import collect_runs, metrics_table
    from panollava.evaluation.metrics import ALL_METRICS
    from panollava.evaluation.scoring import score_files

    with _clear_errors():
        meta = score_files(
            predictions,
            references,
            out=out,
            protocol=protocol.value,
            metrics=metric or ALL_METRICS,
            n_boot=bootstrap,
            seed=seed,
            allow_missing=allow_missing,
            corenlp_dir=corenlp_dir,
            run_name=name,
        )
        typer.echo(metrics_table(collect_runs([out])))
    console.print(f"[green]scored {len(meta['runs'])} run(s)[/] ({meta['protocol']}) -> {out}/")


def compare_command(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run folders written by `panollava score`.")
    ],
    reference: Annotated[
        str | None, typer.Option(help="Run to test the others against (default: the first).")
    ] = None,
    bootstrap: BootstrapOption = BOOTSTRAP_RESAMPLES,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the markdown here.")] = None,
) -> None:
    """Markdown table of runs × metrics (best in bold, 95% CIs) and paired bootstrap tests."""
    from panollava.evaluation.compare import compare_markdown

    with _clear_errors():
        text = compare_markdown(run_dirs, reference=reference, n_boot=bootstrap, seed=seed)
    typer.echo(text)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `panollava score`.")],
    images: Annotated[
        Path | None,
        typer.Option(help="Folder with the panoramas (default: next to the references)."),
    ] = None,
    examples: Annotated[int, typer.Option(help="Examples in the gallery.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed for picking the examples.")] = 0,
) -> None:
    """Write RUN_DIR/report.md and report.html (metrics, bars, per-query table, gallery)."""
    from panollava.evaluation.report import write_report

    with _clear_errors():
        md, html = write_report(run_dir, images=images, examples=examples, seed=seed)
    console.print(f"[green]report[/] {md} and {html}")


def blind_command(
    train: Annotated[Path, typer.Argument(help="QuIC-360 training TSV (url, query, annotation).")],
    test: Annotated[Path, typer.Argument(help="QuIC-360 test TSV to score against.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "outputs/blind_baseline"
    ),
    protocol: Annotated[
        BaselineProtocol, typer.Option(help="Protocol(s) to score.")
    ] = BaselineProtocol.both,
    metric: MetricOpt = None,
    bootstrap: BootstrapOption = BOOTSTRAP_RESAMPLES,
    seed: SeedOpt = 0,
    corenlp_dir: CoreNLPOpt = None,
) -> None:
    """Blind baseline: each query's most central training caption for every test image.

    Central = max mean CIDEr-D to the query's other training captions; no image is used.
    Prints its scores next to the published table of SYSTEM.md §8.
    """
    from panollava.evaluation.baseline import published_table, run_blind_baseline
    from panollava.evaluation.compare import collect_runs, metrics_table
    from panollava.evaluation.metrics import ALL_METRICS

    protocols = ("grouped", "per_row") if protocol is BaselineProtocol.both else (protocol.value,)
    with _clear_errors():
        results = run_blind_baseline(
            train,
            test,
            out=out,
            protocols=protocols,
            metrics=metric or ALL_METRICS,
            n_boot=bootstrap,
            seed=seed,
            corenlp_dir=corenlp_dir,
        )
        typer.echo(metrics_table(collect_runs([out / p for p in protocols])))
    blind = {
        p: (m["runs"]["blind"]["metrics"]["CIDEr"], m["runs"]["blind"]["counts"]["samples"])
        for p, m in results.items()
        if m["runs"]["blind"]["metrics"].get("CIDEr") is not None
    }
    if blind:
        typer.echo("")
        typer.echo(published_table(blind))
    console.print(f"[green]blind baseline[/] -> {out}/ (predictions.csv, central_captions.csv)")


def judge_command(
    predictions: Annotated[Path, typer.Argument(help="Predictions CSV (as for `score`).")],
    base_url: Annotated[
        str, typer.Option(help="OpenAI-compatible API root, e.g. http://host:8000/v1.")
    ],
    model: Annotated[str, typer.Option(help="Judge model name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results JSONL (appended; resumable).")],
    references: Annotated[Path | None, typer.Option(help="References TSV/CSV.")] = None,
    images: Annotated[
        Path | None,
        typer.Option(help="Folder with the panoramas; without it the judge sees text only."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    max_retries: Annotated[
        int, typer.Option(help="Retries per item (HTTP errors, bad replies).")
    ] = 3,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key.")
    ] = "OPENAI_API_KEY",
    json_mode: Annotated[bool, typer.Option(help="Ask for response_format=json_object.")] = False,
    image_width: Annotated[int, typer.Option(help="ERP width sent to the judge (pixels).")] = 1024,
    price_in: Annotated[
        float | None, typer.Option(help="USD per 1M prompt tokens (cost log).")
    ] = None,
    price_out: Annotated[float | None, typer.Option(help="USD per 1M completion tokens.")] = None,
    allow_missing: Annotated[bool, typer.Option(help="Judge only pairs with predictions.")] = False,
) -> None:
    """LLM judge (SYSTEM.md §8 rubric, 20..100) over an OpenAI-compatible chat API."""
    from panollava.evaluation.judge import JudgeConfig, items_from_files, judge_items

    with _clear_errors():
        items = items_from_files(
            predictions, references, images=images, allow_missing=allow_missing
        )
        if images is None:
            console.print("[yellow]no --images: the judge rates from text only[/]")
        cfg = JudgeConfig(
            base_url=base_url,
            model=model,
            api_key=os.environ.get(api_key_env),
            concurrency=concurrency,
            max_retries=max_retries,
            timeout_s=timeout,
            json_mode=json_mode,
            image_max_width=image_width,
            price_in_per_mtok=price_in,
            price_out_per_mtok=price_out,
        )

        def progress(rec: dict) -> None:
            mark = (
                f"{rec['judge']:.0f}"
                if rec["status"] == "ok"
                else f"[red]failed[/] {rec['error'][:120]}"
            )
            console.print(f"{rec['run']} | {rec['sample_id']}: {mark}", highlight=False)

        summary = judge_items(items, cfg, out, progress=progress)
    summary_path = out.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    typer.echo(
        "| run | judge (20-100) | ok | failed | prompt tokens | completion tokens | cost USD |"
    )
    typer.echo("|---|---|---|---|---|---|---|")
    for run, s in summary["runs"].items():
        judge = "–" if s["judge"] is None else f"{s['judge']:.2f}"
        cost = "–" if s["cost_usd"] is None else f"{s['cost_usd']:.4f}"
        typer.echo(
            f"| {run} | {judge} | {s['ok']} | {s['failed']} | {s['prompt_tokens']} | "
            f"{s['completion_tokens']} | {cost} |"
        )
    failed = sum(s["failed"] for s in summary["runs"].values())
    console.print(
        f"results {out}, summary {summary_path}"
        + (f"; [red]{failed} failed[/] (rerun to retry)" if failed else "")
    )


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise typer.BadParameter(f"--shard takes K/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= k < n:
        raise typer.BadParameter(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def eval_command(
    run: Annotated[
        Path,
        typer.Option(
            "--run",
            "--run-dir",
            help="Run folder (runs/<experiment>/<stamp>); spell it --run-dir under torchrun, "
            "whose own parser claims --run.",
        ),
    ],
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="YAML to evaluate with (default: the run's own RUN/config.yaml) and/or dotted "
            "overrides KEY=VALUE.",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Data split to evaluate.")] = "test",
    max_new_tokens: MaxNewTokensOption = 128,
    batch_size: Annotated[int, typer.Option(help="Most prompts per generation batch.")] = 16,
    token_budget: Annotated[
        int | None,
        typer.Option(
            help="Most padded prompt tokens per batch (batch x longest prompt, image tokens "
            "included)."
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="K/N: answer the pairs of shard K of N (whole panoramas, round-robin) into "
            "predictions.shard-K-of-N.csv (default under torchrun: RANK/WORLD_SIZE; rank 0 "
            "merges and scores)."
        ),
    ] = None,
    merge: Annotated[
        int | None,
        typer.Option(help="Merge the N finished shard files into predictions.csv and score."),
    ] = None,
    bootstrap: BootstrapOption = BOOTSTRAP_RESAMPLES,
    backend: Annotated[
        Literal["transformers", "vllm"],
        typer.Option(
            help="transformers (default, every model) or vllm (PanoAdapt runs without PanoRoPE, "
            "needs `pip install vllm` and CUDA; generates from the run's merged export)."
        ),
    ] = "transformers",
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N unique pairs (a quick look).")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Discard predictions in the folder made by a different evaluation (model "
            "weights, generation settings, views, test table) and start again.",
        ),
    ] = False,
    progress_every: ProgressEveryOption = 30.0,
) -> None:
    """Generate once per (image, query) pair of SPLIT (resumable, shardable), score, report.

    Predictions resume only when everything that shapes them is unchanged (fingerprint.json);
    otherwise the command stops and says what differs."""
    # deferred: keeps --help fast
    from panollava.data.images import ImageLoadError
    from panollava.data.quic360 import DataError
    from panollava.evaluation.compare import compare_markdown
    from panollava.evaluation.provenance import ProvenanceError
    from panollava.evaluation.run_eval import evaluate_run, merge_and_score
    from panollava.evaluation.tables import TableError
    from panollava.evaluation.vllm_backend import VLLMUnavailableError
    from panollava.inference.run import RunNotTrainedError
    from panollava.models.adapters.families import PrecisionError

    config, overrides = split_config_args(args)
    if config is None and not (run / "config.yaml").is_file():
        fail(
            f"{run} has no config.yaml: pass the YAML to evaluate with, e.g. "
            f"`panollava eval configs/panoadapt/<recipe>.yaml --run {run}` (zero-shot)"
        )
    cfg = load_config_or_fail(config or run / "config.yaml", overrides)
    known = (FileNotFoundError, DataError, TableError, ImageLoadError, ProvenanceError)
    if merge is not None:
        if shard is not None:
            fail("use either --shard (generate) or --merge (join + score)")
        with user_errors(*known, ValueError):
            out = merge_and_score(cfg, run, merge, split=split, n_boot=bootstrap)
    else:
        if overwrite and shard is not None:
            fail(f"--overwrite cannot be combined with shards: delete {run}/eval/{split} first")
        with user_errors(*known, VLLMUnavailableError, RunNotTrainedError, PrecisionError):
            out = evaluate_run(
                cfg,
                run,
                split=split,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                token_budget=token_budget,
                n_boot=bootstrap,
                shard=_parse_shard(shard),
                backend=backend,
                device=device,
                dtype=dtype,
                limit=limit,
                overwrite=overwrite,
                progress_every_s=progress_every,
            )
    if (out / "metrics.json").is_file():
        typer.echo(compare_markdown([out], n_boot=0))
    console.print(f"[green]evaluation:[/] {escape(str(out))}", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach the evaluation commands to the main CLI."""
    app.command("eval")(eval_command)
    app.command("score")(score_command)
    app.command("compare")(compare_command)
    app.command("report")(report_command)
    app.command("judge")(judge_command)
    baseline_app = typer.Typer(help="Reference baselines.", no_args_is_help=True)
    baseline_app.command("blind")(blind_command)
    app.add_typer(baseline_app, name="baseline")
