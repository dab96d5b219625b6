"""Does a trained run use the image? Teacher-forced answer loss with each question's own views
against the same questions asked of other panoramas' views, per query type.

    .venv/bin/python benchmarks/image_gain.py RUN [--split valid] [--limit 420]

For every (panorama, query) pair of the split (train mode: the canonical answer as the label) the
mean per-token LM loss is computed twice: with the pair's own views, and with the views of the
panorama ``--shift`` places further on in the batch (a different panorama; same question and
answer). ``gain = loss(other views) - loss(own views)`` in nats per answer token: 0 means the
answer does not depend on what the model sees. Unlike n-gram scores of generated text it needs
no decoding and separates queries the image decides (colours, shapes, directions) from the
ones a template or the background answers.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from panollava.inference.run import load_run


def image_gain(run: str, split: str, limit: int, shift: int, batch: int) -> dict[str, dict]:
    """``{query: {"own": loss, "other": loss, "gain": other - own, "pairs": n}}``."""
    loaded = load_run(run)
    system, stage = loaded.system, loaded.cfg.train.stages[-1]
    data = system.dataset(split, stage)
    collate = system.collate(stage)
    samples = [data[i] for i in range(min(limit, len(data)))]
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    with torch.no_grad():
        for start in range(0, len(samples), batch):
            chunk = samples[start : start + batch]
            if len(chunk) <= shift:
                break
            b = collate(chunk)
            b["need_overlap"] = False
            for name, views in (("own", b["pixel_values"]), ("other", None)):
                if views is None:
                    views = b["pixel_values"].roll(shift, 0)  # another panorama's views
                for k, sample in enumerate(chunk):
                    one = {
                        key: (v[k : k + 1] if isinstance(v, torch.Tensor) else v)
                        for key, v in b.items()
                    }
                    one["pixel_values"] = views[k : k + 1]
                    sums[sample.query][name] += float(system.model.step(one).lm_loss)
                    if name == "own":
                        sums[sample.query]["pairs"] += 1
    out = {}
    for query, s in sorted(sums.items()):
        n = s["pairs"]
        own, other = s["own"] / n, s["other"] / n
        out[query] = {"own": own, "other": other, "gain": other - own, "pairs": int(n)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a run folder (runs/<experiment>/<timestamp>)")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--limit", type=int, default=420, help="pairs of the split to use")
    ap.add_argument("--shift", type=int, default=7, help="batch offset of the other panorama")
    ap.add_argument("--batch", type=int, default=42)
    args = ap.parse_args()
    rows = image_gain(args.run, args.split, args.limit, args.shift, args.batch)
    print(f"{'query':<14} {'pairs':>5} {'own views':>10} {'other views':>12} {'gain':>8}")
    for query, r in rows.items():
        print(
            f"{query:<14} {r['pairs']:>5} {r['own']:>10.4f} {r['other']:>12.4f} {r['gain']:>8.4f}"
        )


if __name__ == "__main__":
    main()
