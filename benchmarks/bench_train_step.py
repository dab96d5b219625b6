"""Full-depth training steps of each family's heaviest published recipe: speed, memory, MFU.

    python benchmarks/bench_train_step.py [--jobs qwen2_5_vl internvl gemma3] [--steps 3]

For a GPU (``benchmarks/gpu_check.sh``; never a test). The real architecture (``model.source:
arch``, random weights) is built at full depth — or ``--layers LLMxVISION`` blocks, e.g. to try
it on a CPU — with the recipe's memory setting (default ``train.precision=bf16-pure``, gradient
checkpointing on), and trains on one batch of the shared real panoramas (9 views, PanoRoPE,
overlap loss, LLM + vision LoRA): one warm-up step with the step-0 dead-loss check, one step
under ``torch.utils.flop_counter.FlopCounterMode``, then ``--steps`` timed steps.

Printed per family: seconds per step (forward, backward, AdamW), samples/s, peak memory (CUDA
allocator ``max_memory_allocated``; on CPU the peak RSS), and the FLOPs the counter saw:
``step`` (everything the step ran: with checkpointing the forward of every block runs twice) and
``forward``. Model FLOPs = step − forward (the backward's recomputation is about one forward;
slightly conservative because embedding and LM-head FLOPs are not recomputed but are subtracted).
MFU = model FLOPs / (seconds × peak); HFU uses all step FLOPs. The peak is the device's dense
bf16 tensor rate from the table below (or ``--peak-tflops``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import RECIPES, _full_depth, _peak_rss_bytes, prepare_step

# Dense BF16 tensor-core TFLOPS (without sparsity), NVIDIA datasheets: H100/H200 SXM 989,
# H100 PCIe 756, A100 312, L40S 362, A10 125, L4 121.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "L4": 121.0,
}


def device_peak_tflops(name: str) -> float | None:
    """The dense bf16 peak of a CUDA device name (first table key it contains), else None."""
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def train_steps(job: str, layers: tuple[int, int] | None, precision: str, ckpt: bool, steps: int):
    """Warm-up + counted + timed steps of ``job``; returns the measurements."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cuda = torch.cuda.is_available()
    llm, vision = layers or _full_depth(job)
    st = prepare_step(job, llm, vision, precision, ckpt)
    system, stage, module, opt, batch, device = (
        st.system,
        st.stage,
        st.module,
        st.opt,
        st.batch,
        st.device,
    )

    def step(counter: FlopCounterMode | None = None) -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            if counter is not None:
                with counter:
                    loss, _ = module.compute_loss(batch)
            else:
                loss, _ = module.compute_loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    with torch.autocast(device.type, dtype=torch.bfloat16):
        system.check_stage(stage, batch)  # the step-0 dead-loss check, as the engine runs it
    step()  # warm-up (allocator, kernels)
    fwd = FlopCounterMode(display=False)
    whole = FlopCounterMode(display=False)
    with whole:
        step(fwd)
    if cuda:
        torch.cuda.synchronize()
    times, loss = [], 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if cuda:
        peak, how = torch.cuda.max_memory_allocated(), "CUDA max_memory_allocated"
        name = torch.cuda.get_device_name()
    else:
        peak, how, name = _peak_rss_bytes(), "CPU peak RSS (process)", "cpu"
    seconds = sorted(times)[len(times) // 2]  # median
    return {
        "job": job,
        "layers": [llm, vision],
        "full_depth": list(_full_depth(job)),
        "setting": f"{precision}, checkpointing {'on' if ckpt else 'off'}",
        "batch": st.n,
        "seconds_per_step": seconds,
        "samples_per_s": st.n / seconds,
        "peak_gb": peak / 1024**3,
        "peak_measure": how,
        "step_flops": whole.get_total_flops(),
        "forward_flops": fwd.get_total_flops(),
        "device": name,
        "loss": loss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    ap.add_argument("--precision", default="bf16-pure", choices=["bf16-pure", "bf16-mixed"])
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument("--layers", default=None, help="LLMxVISION blocks (default: full depth)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak (dense bf16)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    layers = tuple(int(x) for x in args.layers.split("x")) if args.layers else None
    rows = []
    print(
        f"{'family':<11} {'depth':>7} {'batch':>5} {'s/step':>7} {'samples/s':>9} "
        f"{'peak GB':>8} {'TFLOP/step':>10} {'MFU':>6} {'HFU':>6}"
    )
    for job in args.jobs:
        r = train_steps(job, layers, args.precision, not args.no_checkpointing, args.steps)
        peak = args.peak_tflops or device_peak_tflops(r["device"])
        model_flops = r["step_flops"] - r["forward_flops"]
        mfu = hfu = None
        if peak:
            mfu = model_flops / r["seconds_per_step"] / (peak * 1e12)
            hfu = r["step_flops"] / r["seconds_per_step"] / (peak * 1e12)
        r.update(model_flops=model_flops, peak_tflops=peak, mfu=mfu, hfu=hfu)
        rows.append(r)
        pct = lambda x: f"{100 * x:5.1f}%" if x is not None else "   n/a"  # noqa: E731
        print(
            f"{job:<11} {r['layers'][0]:>3}x{r['layers'][1]:<3} {r['batch']:>5} "
            f"{r['seconds_per_step']:7.2f} {r['samples_per_s']:9.2f} {r['peak_gb']:8.2f} "
            f"{model_flops / 1e12:10.2f} {pct(mfu)} {pct(hfu)}",
            flush=True,
        )
    if rows:
        print(
            f"\ndevice {rows[0]['device']} (peak {rows[0]['peak_tflops'] or 'unknown'} TFLOPS "
            f"dense bf16); {rows[0]['setting']}; peak memory: {rows[0]['peak_measure']}; "
            "TFLOP/step = model FLOPs (step - forward, FlopCounterMode)"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
