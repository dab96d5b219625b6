"""Peak memory of one training step of each family's heaviest recipe, fitted to full depth.

For each recipe (9 views, PanoRoPE, DenseCL overlap loss, LLM + vision LoRA) the real
architecture (``model.source: arch``, random weights, real width) is built at a few truncated
depths ``(llm blocks, vision blocks)``; one step (step-0 dead-loss check, LM + overlap loss,
backward, AdamW) runs on one batch of the shared real panoramas (the recipe's own batch size, or
``--batch``), each in a fresh subprocess.
Peak memory: the CUDA allocator's ``max_memory_allocated`` on a GPU; on CPU the peak resident
set during the step (the kernel's ``VmHWM``, reset through ``/proc/self/clear_refs`` once the model
is built, so the fp32 random init of a bf16 model does not count) minus the resident set before
the model was built: the resident weights plus the step's own peak. The fit
``peak = fixed + llm_blocks * per_llm_block + vision_blocks * per_vision_block`` (least squares
over the measured depths; residual printed) predicts the full-depth peak, compared with 24 GB.

Settings: ``bf16-mixed`` (fp32 weights, bf16 autocast) and ``bf16-pure`` (frozen weights bf16,
LoRA + optimiser state fp32), each with gradient checkpointing off/on. On CPU autocast is the
CPU bf16 autocast. Run:  python benchmarks/bench_memory.py [--families ...] [--settings ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = (REPO / ".." / "shared" / "data" / "quic360_samples").resolve()
RECIPES = {
    "qwen2_5_vl": "configs/panoadapt/qwen2_5_vl_3b_anyres_e2p_panorope_densecl.yaml",
    "internvl": "configs/panoadapt/internvl3_5_2b_anyres_e2p_panorope_densecl.yaml",
    "gemma3": "configs/panoadapt/gemma3_4b_anyres_e2p_panorope_densecl.yaml",
}
PANOLLAVA = "configs/panollava/default.yaml"
JOBS = [*RECIPES, "panollava:vision", "panollava:resampler", "panollava:finetune"]
SETTINGS = ["bf16-mixed:off", "bf16-mixed:on", "bf16-pure:off", "bf16-pure:on"]
DEPTHS = [(1, 1), (2, 1), (1, 2), (2, 2)]
GB = 1024**3


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) so the build's fp32 init is not counted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _data_overrides() -> list[str]:
    return [
        f"data.train=[{SAMPLES / 'samples.csv'}]",
        f"data.image_root={SAMPLES}",
        "data.valid=[]",
        "data.test=[]",
    ]


def _build(job: str, llm: int, vision: int, ckpt: bool):
    """``(cfg, system, stage)`` of a job: a PanoAdapt family or ``panollava:<stage>``."""
    from panollava.config import load_config

    flags = [*_data_overrides(), f"train.gradient_checkpointing={str(ckpt).lower()}"]
    if job.startswith("panollava:"):
        from panollava.models.panollava.system import build_panollava_system

        cfg = load_config(
            REPO / PANOLLAVA, [*flags, "model.source=arch", f"model.arch_layers={llm}"]
        )
        stage = next(s for s in cfg.train.stages if s.name == job.split(":")[1])
        stage.vision_trainable_blocks = min(stage.vision_trainable_blocks, llm)
        return cfg, build_panollava_system(cfg), stage
    from panollava.models.adapters.loading import load_adapter
    from panollava.models.adapters.system import PanoAdaptSystem

    cfg = load_config(REPO / _recipe(job), [*flags, "model.source=arch"])
    loaded = load_adapter(
        cfg.model.family,
        cfg.views,
        checkpoint=f"arch:{cfg.model.checkpoint or ''}",
        tiny_corpus=["what is in this panorama"],
        panorope=cfg.model.panorope,
        arch_layers=(llm, vision),
    )
    return cfg, PanoAdaptSystem(cfg, loaded), cfg.train.stages[0]


@dataclass
class Step:
    """A built job ready for training steps on ``device``: model, optimizer and one batch."""

    system: Any
    stage: Any
    module: Any
    opt: Any
    batch: dict
    n: int  # samples in the batch
    device: Any


def prepare_step(
    job: str, llm: int, vision: int, precision: str, ckpt: bool, batch_size: int | None = None
) -> Step:
    """Build ``job`` at ``(llm, vision)`` blocks with the memory setting, its optimizer and one
    batch of the shared panoramas (``batch_size``; default the recipe's own), on the GPU if any."""
    import torch

    from panollava.training.memory import apply_memory_settings
    from panollava.training.module import PanoModule, TrainHParams

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, system, stage = _build(job, llm, vision, ckpt)
    system.configure_stage(stage)
    apply_memory_settings(system.model, cfg.train, precision)
    overlap = system.overlap_loss() if stage.overlap_weight > 0 else None
    data = system.dataset("train", stage)
    n = batch_size or stage.batch_size
    batch = system.collate(stage)([data[i % len(data)] for i in range(n)])
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    hp = TrainHParams(
        lr=stage.lr, total_steps=1, lm_weight=stage.lm_weight, overlap_weight=stage.overlap_weight
    )
    module = PanoModule(system.model, hp, overlap).to(device)
    module.train()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=stage.lr)
    return Step(system, stage, module, opt, batch, n, device)


def one_step(
    job: str,
    llm: int,
    vision: int,
    precision: str,
    ckpt: bool,
    check: bool = True,
    batch_size: int | None = None,
) -> dict:
    """Build, check and train one step of ``job``; returns the measured peak (subprocess)."""
    import torch

    import panollava.training.module  # noqa: F401  imported before ``base``: not part of the peak

    cuda = torch.cuda.is_available()
    base = _rss_bytes()
    st = prepare_step(job, llm, vision, precision, ckpt, batch_size)
    system, stage, module, opt, batch, n = st.system, st.stage, st.module, st.opt, st.batch, st.n
    reset = not cuda and _reset_peak_rss()
    t0 = time.perf_counter()
    with torch.autocast(st.device.type, dtype=torch.bfloat16):
        if check:  # the step-0 dead-loss check, as the engine runs it (its graph is freed)
            system.check_stage(stage, batch)
        loss, _ = module.compute_loss(batch)
    loss.backward()
    opt.step()
    seconds = time.perf_counter() - t0
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        how = "CUDA allocator max_memory_allocated"
    elif reset:  # weights resident + the step's peak; not the fp32 init of the random build
        peak = _peak_rss_bytes() - base
        how = "CPU peak RSS during the step (VmHWM reset after the build) minus RSS before it"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
        how = "CPU peak RSS of the process (ru_maxrss, build included) minus RSS before the build"
    return {"peak": peak, "how": how, "seconds": seconds, "loss": float(loss), "batch": n}


def _measure(job: str, llm: int, vision: int, setting: str, check: bool, batch: int | None) -> dict:
    precision, ckpt = setting.split(":")
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); from bench_memory import one_step; "
        f"print('RESULT', json.dumps(one_step({job!r}, {llm}, {vision}, {precision!r}, "
        f"{ckpt == 'on'}, {check}, {batch})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{job} {llm}/{vision} {setting} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def _fit(points: list[tuple[int, int, float]]) -> tuple[list[float], float]:
    """Least squares ``peak = a + b * llm + c * vision``; returns coefficients and max residual."""
    import numpy as np

    x = np.array([[1.0, a, b] for a, b, _ in points])
    y = np.array([p for *_, p in points])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef.tolist(), float(np.abs(x @ coef - y).max())


def _recipe(job: str) -> str:
    """The recipe of a job: a family's heaviest published one, or a PanoAdapt YAML path."""
    return RECIPES.get(job, job)


def _job(text: str) -> str:
    if text in JOBS or (text.endswith((".yaml", ".yml")) and (REPO / text).is_file()):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use one of {', '.join(JOBS)} or a recipe YAML")


def _full_depth(job: str) -> tuple[int, int]:
    from panollava.models.adapters.arch import arch_for_checkpoint

    if job.startswith("panollava:"):
        return 28, 27  # Qwen3-0.6B blocks, SigLIP2-so400m blocks (their rows)
    from panollava.config import load_config

    model = load_config(REPO / _recipe(job), _data_overrides()).model
    cfg = arch_for_checkpoint(model.family, model.checkpoint).config
    vision = cfg["vision_config"]
    return cfg["text_config"]["num_hidden_layers"], vision.get("depth") or vision[
        "num_hidden_layers"
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--jobs",
        nargs="+",
        default=JOBS,
        type=_job,
        help=f"{', '.join(JOBS)} or a PanoAdapt recipe YAML (relative to the repo root)",
    )
    ap.add_argument("--settings", nargs="+", default=SETTINGS, choices=SETTINGS)
    ap.add_argument(
        "--depths", nargs="+", default=[f"{a}x{b}" for a, b in DEPTHS], help="LLMxVISION blocks"
    )
    ap.add_argument("--panollava-depths", nargs="+", type=int, default=[2, 3, 4])
    ap.add_argument(
        "--batch", type=int, default=None, help="samples per step (default: each recipe's own)"
    )
    ap.add_argument(
        "--no-check", action="store_true", help="skip the step-0 dead-loss check (halves CPU time)"
    )
    args = ap.parse_args()
    depths = [tuple(int(n) for n in d.split("x")) for d in args.depths]
    joint = [(n, n) for n in args.panollava_depths]  # PanoLLaVA truncates both towers together
    rows, batches = [], set()
    for family in args.jobs:
        full = _full_depth(family)
        for setting in args.settings:
            points, how, secs = [], "", []
            for llm, vision in joint if family.startswith("panollava") else depths:
                r = _measure(family, llm, vision, setting, not args.no_check, args.batch)
                points.append((llm, vision, r["peak"] / GB))
                how, secs = r["how"], [*secs, r["seconds"]]
                batches.add(r["batch"])
                print(
                    f"  {family} {setting} {llm}x{vision} batch {r['batch']}: "
                    f"{r['peak'] / GB:.2f} GB "
                    f"({r['seconds']:.0f} s, loss {r['loss']:.3f})",
                    flush=True,
                )
            if len({(a, b) for a, b, _ in points}) < 3 and not family.startswith("panollava"):
                continue  # fewer than 3 depth pairs: measured (printed above), no fit
            coef, resid = _fit(points)
            pred = coef[0] + coef[1] * full[0] + coef[2] * full[1]
            rows.append((family, setting, full, coef, resid, pred, how))
    print(
        f"\nmeasure: {rows[0][-1] if rows else '-'}; depths {args.depths} "
        f"(PanoLLaVA: {args.panollava_depths}, both towers); "
        f"batch {sorted(batches)} (samples/step), each recipe's own views"
    )
    print(
        f"{'family':<11} {'setting':<15} {'fixed':>6} {'/LLM blk':>8} {'/vis blk':>8} "
        f"{'resid':>6} {'full (LxV)':>11} {'pred GB':>8}  24 GB"
    )
    for family, setting, full, coef, resid, pred, _ in rows:
        fits = "fits" if pred <= 24 else "over"
        print(
            f"{family:<11} {setting:<15} {coef[0]:6.2f} {coef[1]:8.3f} {coef[2]:8.3f} "
            f"{resid:6.3f} {full[0]:>5}x{full[1]:<5} {pred:8.1f}  {fits}"
        )


if __name__ == "__main__":
    main()
