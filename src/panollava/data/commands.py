"""``panollava data``: check annotation files, download their images, make synthetic panoramas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from panollava.cli_support import console, escape, fail, styled

__all__ = ["register"]

data_app = typer.Typer(
    help="Check, download and synthesise panorama datasets.", no_args_is_help=True
)
out_console = Console(width=140)


def _issue_table(report, limit: int) -> Table:
    table = Table(title=f"issues (first {limit})" if len(report.issues) > limit else "issues")
    for name in ("row", "kind", "severity"):
        table.add_column(name, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for i in report.issues[:limit]:
        color = "red" if i.severity == "error" else "yellow"
        table.add_row(escape(i.where), i.kind, f"[{color}]{i.severity}[/]", escape(i.detail))
    return table


def _summary_table(report, files: list[Path]) -> Table:
    table = Table(
        title=escape(
            f"{', '.join(f.name for f in files)}: {report.rows} rows, {report.images} images"
        )
    )
    table.add_column("check", no_wrap=True)
    table.add_column("errors", justify="right")
    table.add_column("warnings", justify="right")
    for kind, counts in report.counts().items():
        errors, warnings = counts["error"], counts["warning"]
        table.add_row(kind, f"[red]{errors}[/]" if errors else "0", str(warnings))
    return table


@data_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Annotation TSV/CSV files (one split).")],
    images: Annotated[
        Path | None, typer.Option("--images", help="Image root for relative paths.")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Cache of downloaded http(s) images.")
    ] = None,
    mode: Annotated[
        Literal["decode", "header"],
        typer.Option("--mode", help="Image check: decode (catches truncation) or header."),
    ] = "decode",
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Issue kind to report as a warning (repeatable)."),
    ] = None,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="Write every issue to this TSV.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Issue rows to print.")] = 50,
) -> None:
    """Report bad rows (missing/unreadable image, non-2:1, empty/NaN cells, duplicates,
    malformed rows); exit 1 when any row has an error."""
    from panollava.data.quic360 import DataError, read_split
    from panollava.data.validate import validate_rows

    if mode not in ("decode", "header"):
        fail(f"--mode must be 'decode' or 'header', got {mode!r}")
    try:
        rows = read_split(files, image_root=images, cache_dir=cache)
        report = validate_rows(rows, images=mode, allow=allow or ())  # type: ignore[arg-type]
    except (DataError, ValueError) as exc:
        fail(str(exc))
    if report.issues:
        out_console.print(_issue_table(report, limit))
    out_console.print(_summary_table(report, files))
    if report_path is not None:
        report.write_tsv(report_path)
        out_console.print(f"all issues written to {escape(str(report_path))}")
    if not report.ok:
        bad = len(report.bad_rows())
        console.print(f"[bold red]{len(report.errors)} error(s)[/] on {bad} of {report.rows} rows")
        raise typer.Exit(1)
    out_console.print(f"[green]ok[/]: {report.rows} rows, {report.images} images")


@data_app.command("download")
def download(
    file: Annotated[Path, typer.Argument(help="QuIC-360 TSV/CSV with http(s) image URLs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    workers: Annotated[int, typer.Option(help="Concurrent downloads.")] = 8,
    retries: Annotated[int, typer.Option(help="Retries of transient failures.")] = 3,
    backoff: Annotated[float, typer.Option(help="First retry delay, seconds (doubles).")] = 0.5,
    timeout: Annotated[float, typer.Option(help="Socket timeout, seconds.")] = 30.0,
    max_mb: Annotated[float, typer.Option(help="Refuse images larger than this (MiB).")] = 200.0,
    deadline: Annotated[
        float, typer.Option(help="Most seconds one download attempt may take (wall clock).")
    ] = 600.0,
) -> None:
    """Download the images of FILE into OUT/images, write OUT/<stem>.tsv pointing at them,
    OUT/<stem>.failed.tsv (dead links) and OUT/<stem>.manifest.tsv. Resumable."""
    from rich.progress import Progress

    from panollava.data.download import DownloadOptions, download_table
    from panollava.data.quic360 import DataError

    try:
        opts = DownloadOptions(
            workers=workers,
            retries=retries,
            backoff_s=backoff,
            timeout_s=timeout,
            deadline_s=deadline,
            max_bytes=int(max_mb * 1024 * 1024),
        )
    except ValueError as exc:
        fail(str(exc))
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("downloading", total=None)
            report = download_table(file, out, opts=opts, progress=lambda e: bar.advance(task))
    except DataError as exc:
        fail(str(exc))
    table = Table(title=escape(f"{file.name} -> {out}"))
    table.add_column("status")
    table.add_column("urls", justify="right")
    for status in ("downloaded", "cached", "failed"):
        table.add_row(status, str(report.count(status)))
    out_console.print(table)
    for e in [e for e in report.entries if e.status == "failed"][:20]:
        out_console.print(styled("dead", "yellow", f"{e.url}: {e.error}"), highlight=False)
    out_console.print(
        f"{report.rows_kept} rows -> {report.table}; {report.rows_failed} rows of failed "
        f"downloads -> {report.failed_table}; manifest {report.manifest}",
        markup=False,
    )


@data_app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    n: Annotated[int, typer.Option("--n", help="Number of panoramas (>= 3).")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed (output is deterministic).")] = 0,
    width: Annotated[int, typer.Option(help="ERP width in pixels (height = width / 2).")] = 1024,
    tokenizer: Annotated[
        bool, typer.Option("--tokenizer/--no-tokenizer", help="Also write OUT/tokenizer.")
    ] = True,
    seam_share: Annotated[
        float,
        typer.Option(
            help="Share of scenes given an object across the ±180° seam, 0..1 (objects "
            "placed at random cross it too: about 17% of scenes)."
        ),
    ] = 0.35,  # = synth_scene.SEAM_SHARE (not imported here: keeps --help fast)
    pole_share: Annotated[
        float,
        typer.Option(help="Share of scenes given an object near a pole, |pitch| >= 60°, 0..1."),
    ] = 0.0,
    test_subset: Annotated[
        str,
        typer.Option(
            help="Give every test scene an object of this subset: seam, pole, small or none."
        ),
    ] = "none",
    object_scale: Annotated[
        float,
        typer.Option(
            help="Factor on the angular radius of the objects that are not small "
            "(10-22° by default), 1..2."
        ),
    ] = 1.0,
    small_share: Annotated[
        float,
        typer.Option(help="Chance of each object being small (angular radius 4-7°), 0..1."),
    ] = 0.3,  # = synth_scene.SMALL_SHARE
) -> None:
    """Render synthetic 360° scenes with QuIC-360-style TSVs, scene.json ground truth and a
    word-level tokenizer (the embedded default dataset)."""
    from panollava.data.synth import SceneOptions, synthesize

    try:
        options = SceneOptions(
            seam_share=seam_share,
            pole_share=pole_share,
            test_subset=None if test_subset == "none" else test_subset,
            object_scale=object_scale,
            small_share=small_share,
        )
        result = synthesize(out, n=n, seed=seed, width=width, tokenizer=tokenizer, options=options)
    except ValueError as exc:
        fail(str(exc))
    table = Table(title=escape(f"synthetic panoramas in {out} ({result.seconds:.1f} s)"))
    for col in ("split", "images", "rows", "table"):
        table.add_column(col)
    for split, path in result.tables.items():
        table.add_row(split, str(result.images[split]), str(result.rows[split]), escape(str(path)))
    out_console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``panollava data …`` to the main CLI."""
    app.add_typer(data_app, name="data")
