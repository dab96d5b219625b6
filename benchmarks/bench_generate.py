"""Batched vs one-by-one greedy generation of a PanoAdapt model, measured in the same run.

    .venv/bin/python benchmarks/bench_generate.py [--family qwen2_5_vl] [--n 32] [--batch 8]
    python benchmarks/bench_generate.py --job gemma3 --n 16 --batch 8 --new-tokens 128   # a GPU

Default: a tiny random model on 56-px views. ``--job FAMILY``: that family's heaviest published
recipe at its real architecture (``model.source: arch``, random weights, full depth or
``--layers LLMxVISION``) in bf16 on the GPU if there is one, on the recipe's 9 views of the shared
real panoramas; every answer is forced to ``--new-tokens`` tokens (``min_new_tokens``), so random
weights cannot stop early and both paths decode the same number of tokens. Both paths answer the same (panorama, query) pairs through the same evaluation loop
(``panollava.evaluation.generation.run_generation``): left-padded batches of ``--batch`` prompts
vs batches of one. Prints samples/s of each and the speed ratio, and checks that the answers are
identical (greedy decoding with left padding must not change the output; in bf16 at real
size, padded batches may round differently, so there it is reported, not required).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import torch

from panollava.data.sample import PanoSample
from panollava.evaluation.generation import EvalItem, run_generation
from panollava.models.adapters.loading import load_adapter
from panollava.views.schema import ViewsConfig

QUERIES = ["colors", "objects", "what is there", "the red disc", "location of the star"]


def _arch(job: str, layers: str | None, n: int, device: torch.device):
    """The recipe's real architecture (bf16, random weights) and ``n`` panoramas' real views."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_memory import RECIPES, REPO, _data_overrides
    from panollava.config import load_config
    from panollava.data.datasets import build_dataset

    cfg = load_config(REPO / RECIPES[job], [*_data_overrides(), "model.source=arch"])
    loaded = load_adapter(
        cfg.model.family,
        cfg.views,
        checkpoint=f"arch:{cfg.model.checkpoint or ''}",
        tiny_corpus=QUERIES,
        dtype=torch.bfloat16,
        panorope=cfg.model.panorope,
        arch_layers=tuple(int(x) for x in layers.split("x")) if layers else None,
    )
    loaded.wrapper.to(device).eval()
    data = build_dataset(cfg, "train", mode="eval")
    return loaded, {f"pano_{k}": data[k % len(data)].views for k in range(n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="qwen2_5_vl")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--job", default=None, help="real architecture of this family's recipe")
    parser.add_argument("--layers", default=None, help="with --job: LLMxVISION blocks")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.job:
        loaded, panos = _arch(args.job, args.layers, args.n // 2 + 1, device)
        args.family = f"{args.job} (arch, {loaded.wrapper.hf_model.dtype}, {device})"
        force = {"min_new_tokens": args.new_tokens}
    else:
        device, force = torch.device("cpu"), {}
        loaded = load_adapter(
            args.family, ViewsConfig(tile_size=56), checkpoint="tiny", tiny_corpus=QUERIES
        )
        g = torch.Generator().manual_seed(1)
        panos = {f"pano_{k}": torch.rand(9, 3, 56, 56, generator=g) for k in range(args.n // 2 + 1)}
    wrapper, processor = loaded.wrapper, loaded.processor
    collate = loaded.collate(train=False, max_text_length=128)
    items = [
        EvalItem(f"pano_{k // 2}", QUERIES[k % len(QUERIES)] + f" {k}", prompt_tokens=k % 5)
        for k in range(args.n)
    ]
    tokenizer = processor.tokenizer

    def predict(batch: list[EvalItem]) -> list[str]:
        inputs = collate([PanoSample(panos[it.url], it.query) for it in batch])
        inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        with torch.inference_mode():
            new = wrapper.generate(
                inputs, max_new_tokens=args.new_tokens, pad_token_id=tokenizer.pad_token_id, **force
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
