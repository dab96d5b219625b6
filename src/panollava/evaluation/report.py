"""``panollava report RUN_DIR``: ``report.md`` + ``report.html`` for a scored run folder.

Sections: the metrics table (95% CIs), a bar chart of the metrics per run (``metrics.png``), the
grounded metrics when the references have scene graphs (every grounded metric per run, next to the
chance level and any baseline run folders passed in, e.g. ``baseline blind``'s), a per-query
breakdown (mean per-sample CIDEr-D and sample count per query and run) and a gallery of examples
(ERP thumbnail when the image exists locally, query, references, each run's prediction).
"""

from __future__ import annotations

import html
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from panollava.evaluation.compare import collect_runs, format_with_ci, metrics_table
from panollava.evaluation.grounded import METRICS as GROUNDED_METRICS
from panollava.evaluation.metrics import ALL_METRICS
from panollava.evaluation.scoring import LoadedRun, load_run_dir

__all__ = ["find_local_image", "write_report"]

ASSETS = "report_assets"
THUMB_SIZE = (512, 256)
_MAX_REFS_SHOWN = 5


@dataclass
class _Doc:
    """The report built once and rendered to markdown and HTML."""

    md: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.md += ["#" * level + " " + text, ""]
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.md += [text, ""]
        self.html.append(f"<p>{html.escape(text)}</p>")

    def image(self, src: str, alt: str, width: int | None = None) -> None:
        self.md += [f"![{alt}]({src})", ""]
        w = f' width="{width}"' if width else ""
        self.html.append(f'<img src="{html.escape(src)}" alt="{html.escape(alt)}"{w}>')

    def table(self, header: list[str], rows: list[list[str]], md_text: str | None = None) -> None:
        if md_text is None:
            md_text = "\n".join(
                ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            )
        self.md += [md_text, ""]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>" for r in rows
        )
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _inline_html(text: str) -> str:
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def find_local_image(url: str, roots: list[Path]) -> Path | None:
    """A local file for ``url``: ``root/url`` or ``root/<file name of the url>``."""
    name = Path(urlparse(url).path).name if "://" in url else url
    for root in roots:
        candidates = [root / name] if "://" in url else [root / url, root / Path(url).name]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
    return None


def _thumbnail(src: Path, dst: Path) -> None:
    with Image.open(src) as im:
        im.draft("RGB", (THUMB_SIZE[0] * 2, THUMB_SIZE[1] * 2))  # JPEG: decode at reduced scale
        im = im.convert("RGB")
        im.thumbnail(THUMB_SIZE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.save(dst, quality=85)


def _bar_chart(runs: dict[str, LoadedRun], path: Path) -> None:

    metrics = [
        m for m in ALL_METRICS if any(r.entry["metrics"].get(m) is not None for r in runs.values())
    ]
    fig = Figure(figsize=(min(11.0, 2.0 + 1.1 * len(metrics)), 3.6), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(metrics))
    for k, (label, run) in enumerate(runs.items()):
        values = np.array([run.entry["metrics"].get(m) or 0.0 for m in metrics])
        ci = [run.entry.get("ci95", {}).get(m) or [None, None] for m in metrics]
        lo = np.array(
            [v - c[0] if c[0] is not None else 0 for v, c in zip(values, ci, strict=True)]
        )
        hi = np.array(
            [c[1] - v if c[1] is not None else 0 for v, c in zip(values, ci, strict=True)]
        )
        ax.bar(
            x + (k - (len(runs) - 1) / 2) * width,
            values,
            width,
            label=label,
            # A percentile bootstrap CI need not contain the corpus score (BLEU/METEOR are
            # ratios of sums; tiny samples): draw what lies on each side, never negative bars.
            yerr=np.clip(np.stack([lo, hi]), 0.0, None),
            capsize=2,
        )
    ax.set_xticks(x, metrics)
    ax.set_ylabel("score (95% CI)")
    ax.legend(fontsize=8, ncols=min(4, len(runs)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def _grounded(doc: _Doc, meta: dict, runs: dict[str, LoadedRun], baselines: dict) -> None:
    """Every grounded metric (rows) per run, baseline run and chance (columns), 95% CIs."""
    columns = {label: r.entry["grounded"] for label, r in runs.items() if "grounded" in r.entry}
    for label, r in baselines.items():
        if "grounded" in r.entry:
            columns[f"{label} (baseline)" if label in columns else label] = r.entry["grounded"]
    if not columns:
        return
    columns["chance"] = meta["grounded"]["chance"]
    doc.heading("Grounded metrics (scene graphs)")
    doc.paragraph(
        "Each prediction is parsed with the synthetic caption grammar (colours, shapes, "
        "directions, relations, counts, background words) and checked against the scene graph of "
        "its image; micro-averaged over (image, query) pairs, 95% CIs from image resamples. "
        f"Chance: {meta['grounded']['chance_method']}. Scene graphs: "
        f"{', '.join(meta['grounded']['scene_graphs'])}."
    )
    rows = []
    for name in GROUNDED_METRICS:
        cells = [
            format_with_ci(c["metrics"].get(name), c["ci95"].get(name)) for c in columns.values()
        ]
        rows.append([name, *cells])
    doc.table(["metric", *columns], rows)


def _per_query(doc: _Doc, runs: dict[str, LoadedRun], metric: str = "CIDEr") -> None:
    queries = sorted({q for r in runs.values() for q in r.samples.queries})
    header = ["query", *(f"{label} {metric}" for label in runs), "samples"]
    rows = []
    for q in queries:
        cells, n = [q], 0
        for run in runs.values():
            mask = np.array([qq == q for qq in run.samples.queries])
            values = run.scores.per_sample.get(metric)
            n = max(n, int(mask.sum()))
            cells.append(f"{values[mask].mean():.4f}" if values is not None and mask.any() else "–")
        rows.append([*cells, str(n)])
    doc.heading(f"Per query ({len(queries)} queries)")
    doc.paragraph(
        f"Mean per-sample {metric} of each query's samples (IDF from the whole test set); "
        "small queries are noisy."
    )
    doc.table(header, rows)


def _gallery(
    doc: _Doc, out: Path, runs: dict[str, LoadedRun], roots: list[Path], n: int, seed: int
) -> None:
    first = next(iter(runs.values()))
    common = [
        i
        for i, sid in enumerate(first.samples.sample_ids)
        if all(sid in set(r.samples.sample_ids) for r in runs.values())
    ]
    chosen = sorted(random.Random(seed).sample(common, min(n, len(common))))
    doc.heading(f"Examples ({len(chosen)} of {len(first.samples)}, seed {seed})")
    positions = {
        label: {sid: i for i, sid in enumerate(r.samples.sample_ids)} for label, r in runs.items()
    }
    for k, i in enumerate(chosen):
        sid, url = first.samples.sample_ids[i], first.samples.urls[i]
        doc.heading(f"{k + 1}. {first.samples.queries[i]} — {Path(url).name}", level=3)
        image = find_local_image(url, roots)
        if image is not None:
            thumb = out / ASSETS / f"example_{k + 1:02d}.jpg"
            _thumbnail(image, thumb)
            doc.image(f"{ASSETS}/{thumb.name}", f"ERP {Path(url).name}", width=THUMB_SIZE[0])
        else:
            doc.paragraph(f"(image not found locally: {url})")
        refs = first.samples.references[i]
        shown = refs[:_MAX_REFS_SHOWN]
        rows = [["reference", r] for r in shown]
        if len(refs) > len(shown):
            rows.append(["reference", f"… {len(refs) - len(shown)} more"])
        for label, run in runs.items():
            j = positions[label][sid]
            cider = run.scores.per_sample.get("CIDEr")
            tag = f" (CIDEr {cider[j]:.3f})" if cider is not None else ""
            rows.append([f"{label}{tag}", run.samples.predictions[j] or "(empty)"])
        doc.table(["", "text"], rows)


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "vertical-align:top;text-align:left}th{background:#f4f4f4}"
)


def write_report(
    run_dir: str | Path,
    *,
    images: str | Path | None = None,
    examples: int = 8,
    seed: int = 0,
    baselines: Sequence[str | Path] = (),
) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and their assets into ``run_dir``; returns both paths.

    ``baselines``: other run folders (e.g. ``baseline blind``'s ``grouped/``) whose grounded
    metrics are shown next to the runs'."""
    run_dir = Path(run_dir)
    meta, loaded = load_run_dir(run_dir)
    runs = dict(loaded)
    others = collect_runs(baselines) if baselines else {}
    roots = [Path(images)] if images is not None else []
    for key in ("references", "predictions"):
        if meta["inputs"].get(key):
            roots.append(Path(meta["inputs"][key]).parent)
    doc = _Doc()
    doc.heading(f"Evaluation report — {run_dir.name}", level=1)
    doc.paragraph(
        f"Protocol: {meta['protocol']} ({meta['protocol_note']}). Predictions: "
        f"{meta['inputs'].get('predictions')}; references: {meta['inputs'].get('references')}. "
        f"CIs: {meta['bootstrap']['n_boot']} bootstrap resamples of images, seed "
        f"{meta['bootstrap']['seed']}."
    )
    doc.heading("Metrics")
    table_md = metrics_table(runs, grounded=False)
    table_lines = [ln for ln in table_md.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in table_lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in table_lines[2:]]
    doc.table(header, rows, md_text="\n".join(table_lines))
    for name, why in sorted(
        {(m, w) for r in runs.values() for m, w in r.entry.get("unavailable", {}).items()}
    ):
        doc.paragraph(f"{name} n/a: {why}")
    (run_dir / ASSETS).mkdir(exist_ok=True)
    _bar_chart(runs, run_dir / ASSETS / "metrics.png")
    doc.image(f"{ASSETS}/metrics.png", "metrics per run")
    if "grounded" in meta:
        _grounded(doc, meta, runs, others)
    _per_query(doc, runs)
    _gallery(doc, run_dir, runs, roots, examples, seed)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    md_path.write_text("\n".join(doc.md), encoding="utf-8")
    html_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(run_dir.name)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(doc.html)
        + "</body></html>\n",
        encoding="utf-8",
    )
    return md_path, html_path
