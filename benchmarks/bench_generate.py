"""Batched vs one-by-one greedy generation on a tiny PanoAdapt model, measured in the same run.

    .venv/bin/python benchmarks/bench_generate.py [--family qwen2_5_vl] [--n 32] [--batch 8]

Both paths answer the same (panorama, query) pairs through the same evaluation loop
(``panollava.evaluation.generation.run_generation``): left-padded batches of ``--batch`` prompts
vs batches of one. Prints samples/s of each and the speed ratio, and checks that the answers are
identical (greedy decoding with left padding must not change the output).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch

from panollava.data.sample import PanoSample
from panollava.evaluation.generation import EvalItem, run_generation
from panollava.models.adapters.loading import load_adapter
from panollava.views.schema import ViewsConfig

QUERIES = ["colors", "objects", "what is there", "the red disc", "location of the star"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="qwen2_5_vl")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    loaded = load_adapter(
        args.family, ViewsConfig(tile_size=56), checkpoint="tiny", tiny_corpus=QUERIES
    )
    wrapper, processor = loaded.wrapper, loaded.processor
    collate = loaded.collate(train=False, max_text_length=128)
    g = torch.Generator().manual_seed(1)
    panos = {f"pano_{k}": torch.rand(9, 3, 56, 56, generator=g) for k in range(args.n // 2 + 1)}
    items = [
        EvalItem(f"pano_{k // 2}", QUERIES[k % len(QUERIES)] + f" {k}", prompt_tokens=k % 5)
        for k in range(args.n)
    ]
    tokenizer = processor.tokenizer

    def predict(batch: list[EvalItem]) -> list[str]:
        inputs = collate([PanoSample(panos[it.url], it.query) for it in batch])
        new = wrapper.generate(
            inputs, max_new_tokens=args.new_tokens, pad_token_id=tokenizer.pad_token_id
        )
        return tokenizer.batch_decode(new, skip_special_tokens=True)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in (("one-by-one", 1), ("batched", args.batch)):
            predict(items[:size])  # warm-up
            t0 = time.perf_counter()
            path = run_generation(items, predict, Path(tmp) / f"{name}.csv", max_batch=size)
            results[name] = (time.perf_counter() - t0, list(csv.DictReader(path.open())))
    (t1, rows1), (tb, rows_b) = results["one-by-one"], results["batched"]
    same = sorted(map(tuple, (r.values() for r in rows1))) == sorted(
        map(tuple, (r.values() for r in rows_b))
    )
    print(
        f"family {args.family}, {args.n} prompts, {args.new_tokens} new tokens, threads {torch.get_num_threads()}"
    )
    print(f"one-by-one: {args.n / t1:7.1f} samples/s ({t1:.2f} s)")
    print(f"batched x{args.batch}: {args.n / tb:7.1f} samples/s ({tb:.2f} s)")
    print(f"speed ratio batched / one-by-one: {t1 / tb:.2f}x; identical answers: {same}")


if __name__ == "__main__":
    main()
