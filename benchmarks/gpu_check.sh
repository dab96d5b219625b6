#!/usr/bin/env bash
# The GPU checks, as one prepared script for a lent GPU machine (the `device` tool): the
# `gpu`-marked tests (nvJPEG decode, CUDA sampling, Predictor on CUDA) and the CUDA view
# benchmark against py360convert (issue #2's >= 20x target), the memory fit of one training
# step per family's heaviest recipe with the CUDA allocator (issue #14; the 24 GB table), and
# (issue #14) full-depth training steps per family (s/step, samples/s, peak memory, MFU) and
# batched vs one-by-one greedy generation (9 views, 128 new tokens) at real size.
#
# That machine has torch/torchvision/transformers/peft/lightning but not pydantic, py360convert,
# mambapy or the shared data, and cannot download. Prepare once here, in the repo root:
#
#   printf '/.whl/\n/.shared/\n' >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl pydantic==2.14.3 pydantic_core==2.50.4 annotated-types==0.8.0 \
#     typing-inspection==0.4.5 py360convert==1.0.4 mambapy==1.2.0
#   mkdir -p .shared/data && cp -r ../shared/data/quic360_samples .shared/data/
#
# then call the device tool with carry [".whl", ".shared"] and the command
#   bash benchmarks/gpu_check.sh [PART...]     # PART: tests views memory train generate (all)
# (all parts take longer than one 10-minute call: run them as `tests views memory` (about 8-10
# minutes), `train` and `generate` (at most 5 minutes each, by their timeouts); results also land
# in $OUT/gpu_check.log).
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp}/gpu_check.log"
{
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 1
  fi
  export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
  [ -e ../shared ] || ln -s "$PWD/.shared" ../shared
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())"
  parts="${*:-tests views memory train generate}"
  for part in $parts; do
    case $part in
      tests)
        echo "== gpu tests"
        python3 -m pytest -q -m gpu -p no:cacheprovider tests/data/test_images.py tests/geometry \
          tests/e2e/test_run_inference.py ;;
      views)
        echo "== bench_views --device cuda"
        python3 benchmarks/bench_views.py --device cuda --repeats 7
        echo "== bench_views (cpu, same machine)"
        python3 benchmarks/bench_views.py --repeats 3 ;;
      memory)
        echo "== bench_memory (CUDA allocator peak, truncated depths fitted to full depth)"
        timeout 300 python3 benchmarks/bench_memory.py --settings bf16-mixed:off bf16-pure:on \
          --jobs qwen2_5_vl internvl gemma3
        echo "== bench_memory: Qwen native (the ERP at its own resolution, up to 16,290 tokens)"
        timeout 150 python3 benchmarks/bench_memory.py --settings bf16-pure:on \
          --jobs configs/panoadapt/qwen2_5_vl_3b_native.yaml ;;
      train)
        echo "== bench_train_step (full depth, bf16-pure + checkpointing: s/step, MFU)"
        timeout 300 python3 benchmarks/bench_train_step.py --steps 3 \
          --json "${OUT:-/tmp}/train_step.json" ;;
      generate)
        echo "== bench_generate (full depth, 9 views, 128 new tokens, batched vs one-by-one)"
        for job in qwen2_5_vl internvl gemma3; do
          timeout 100 python3 benchmarks/bench_generate.py --job "$job" --n 16 --batch 8 \
            --new-tokens 128
        done ;;
      *) echo "unknown part $part (tests views memory train generate)"; exit 2 ;;
    esac
  done
} 2>&1 | tee "$log"
