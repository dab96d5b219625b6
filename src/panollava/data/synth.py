"""The synthetic panorama dataset (the embedded default for the demo and end-to-end tests).

``synthesize(out, n=400, seed=0)`` writes::

    out/train/pano_00000.jpg …   ERP JPEGs (width x width/2)
    out/{train,valid,test}.tsv    QuIC-360 format: url (relative to the TSV), query, annotation
    out/{split}/scene.json        ground truth: every scene graph
    out/data.yaml                 a ``data:`` config section pointing at the three TSVs
    out/tokenizer/                word-level tokenizer of all captions (AutoTokenizer-loadable)

Splits take the panoramas in index order (80/10/10, at least one each). Train and valid hold
the canonical caption of every (image, query) pair; test adds the paraphrases as extra
references (3-4 per pair). Scene ``i`` depends only on ``(seed, i)`` and the scene options:
deterministic.

Scene control (for benchmarks that target the panorama geometry): ``seam_share`` / ``pole_share``
are the shares of scenes given an object across the ±180° seam / near a pole (other objects may
cross the seam by chance); ``test_subset`` (``seam``, ``pole`` or ``small``) gives *every* test
scene an object of that subset, so the test split measures exactly that geometry while train and
valid keep the shares; ``object_scale`` enlarges the objects that are not small and
``small_share`` (0.3) is the chance of an object being small. The options are recorded in each
``scene.json`` and in ``data.yaml``.
Each scene.json lists the scenes of the images in its folder (``url`` relative to ``out``; the
grounded metrics of :mod:`panollava.evaluation.grounded` find it next to the images).
"""

from __future__ import annotations

import csv
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from PIL import Image

from panollava.data.synth_captions import QUERIES, caption_scene
from panollava.data.synth_scene import SceneOptions, SynthScene, render_scene_hwc
from panollava.data.tokenizer import build_word_tokenizer, save_word_tokenizer

__all__ = ["SceneOptions", "SynthResult", "split_counts", "synthesize"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote: TSV per split, rows per split, seconds taken."""

    out: Path
    tables: dict[str, Path]
    rows: dict[str, int]
    images: dict[str, int]
    seconds: float


def split_counts(n: int) -> dict[str, int]:
    """Panoramas per split: 10% valid, 10% test (at least 1 each), the rest train."""
    if n < 3:
        raise ValueError(f"need at least 3 panoramas (one per split), got {n}")
    held = max(1, round(0.1 * n))
    return {"train": n - 2 * held, "valid": held, "test": held}


def _to_jpeg(pixels, path: Path, quality: int) -> None:
    """Save ``(H, W, 3)`` float in ``[0, 1]`` as a JPEG."""
    arr = pixels.mul(255.0).round_().to(torch.uint8).numpy()  # (H, W, 3)
    Image.fromarray(arr).save(path, quality=quality)


def _rows(split: str, url: str, scene: SynthScene) -> list[tuple[str, str, str]]:
    captions = caption_scene(scene)
    if split == "test":
        return [(url, q, c) for q in QUERIES for c in captions[q]]
    return [(url, q, captions[q][0]) for q in QUERIES]


def _write_tsv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["url", "query", "annotation"])
        writer.writerows(rows)


def _write_split(
    out: Path,
    split: str,
    indices: range,
    *,
    seed: int,
    width: int,
    quality: int,
    pool,
    options: SceneOptions,
) -> tuple[list[tuple[str, str, str]], list[dict]]:
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    scenes: list[dict] = []
    jobs = []
    for i in indices:
        scene = options.scene(seed, i, split)
        url = f"{split}/pano_{i:05d}.jpg"
        pixels = render_scene_hwc(scene, width, noise_seed=seed * 1_000_003 + i)  # (H, W, 3)
        jobs.append(pool.submit(_to_jpeg, pixels, out / url, quality))
        rows.extend(_rows(split, url, scene))
        scenes.append({"url": url, "index": i} | scene.to_json())
    for job in jobs:
        job.result()  # re-raise write errors
    meta = {
        "seed": seed,
        "width": width,
        "height": width // 2,
        "split": split,
        "options": asdict(options),
        "scenes": scenes,
    }
    (folder / "scene.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return rows, scenes


def synthesize(
    out: str | Path,
    *,
    n: int = 400,
    seed: int = 0,
    width: int = 1024,
    quality: int = 90,
    tokenizer: bool = True,
    options: SceneOptions | None = None,
) -> SynthResult:
    """Render ``n`` panoramas and write the dataset described in the module docstring."""
    options = options or SceneOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    counts = split_counts(n)
    tables: dict[str, Path] = {}
    n_rows: dict[str, int] = {}
    texts: list[str] = list(QUERIES)
    start = 0
    with ThreadPoolExecutor(max_workers=2) as pool:  # JPEG encoding overlaps rendering
        for split in SPLITS:
            indices = range(start, start + counts[split])
            start += counts[split]
            rows, _ = _write_split(
                out,
                split,
                indices,
                seed=seed,
                width=width,
                quality=quality,
                pool=pool,
                options=options,
            )
            tables[split] = out / f"{split}.tsv"
            _write_tsv(tables[split], rows)
            n_rows[split] = len(rows)
            texts.extend(r[2] for r in rows)
    data = {"data": {s: [f"{s}.tsv"] for s in SPLITS}}
    header = f"# synthetic panoramas: panollava data synth --out {out} --n {n} --seed {seed}"
    if options != SceneOptions():
        header += (
            f" --seam-share {options.seam_share} --pole-share {options.pole_share}"
            f" --test-subset {options.test_subset or 'none'}"
            f" --object-scale {options.object_scale} --small-share {options.small_share}"
        )
    header += "\n"
    (out / "data.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False), "utf-8")
    if tokenizer:
        save_word_tokenizer(build_word_tokenizer(texts), out / "tokenizer")
    return SynthResult(out, tables, n_rows, counts, time.perf_counter() - t0)
