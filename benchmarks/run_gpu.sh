#!/usr/bin/env bash
# Every GPU benchmark and GPU test in one call, for a session that is lent a device machine.
#
# The device image has torch 2.11, timm, scikit-image and matplotlib but not the packages below,
# and no network. Prepare their wheels here first, into the ignored folder .wheels/:
#   pip download --no-deps -d .wheels pytorch-wavelets==1.3.0 PyWavelets lpips==0.1.4 \
#       torch-fidelity==0.4.0 pytorch-fid submitit einops torchdiffeq --python-version 3.12 \
#       --only-binary=:all:
#   (einops and torchdiffeq are for the official LightningDiT code, not for freqlat)
#   (pytorch-wavelets, lpips and torch-fidelity publish pure-Python wheels)
# For the tokenizer comparison against the official code in the same run, also put checkouts of
# hustvl/LightningDiT, LTH14/mar, FoundationVision/VAR and CompVis/taming-transformers into the
# ignored folder .official/ as owner+name (about 10 MB; `fetch` gives them), and carry it too.
# then run on the device, carrying .wheels (and .official):
#   bash benchmarks/run_gpu.sh        (results land in $OUT/RESULTS-gpu.md and the console)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .wheels ]; then
    python3 -m pip install --quiet --no-index --no-deps .wheels/*.whl
fi
PYTHONPATH=$(ls -d packages/*/src apps/*/src 2>/dev/null | paste -sd:)
export PYTHONPATH
out=${OUT:-/tmp}/RESULTS-gpu.md
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$out"
python3 -m pytest -m gpu -q -p no:cacheprovider packages apps 2>&1 | tail -n 15 | tee -a "$out" || true
python3 benchmarks/bench_wavelets.py --device cuda --append "$out"
python3 benchmarks/bench_metrics.py --device cuda --append "$out"
official=()
if [ -d .official ]; then
    official=(--official-root .official)
fi
python3 benchmarks/bench_tokenizers.py --device cuda "${official[@]}" --append "$out"
python3 benchmarks/bench_training.py --preset va-vae-f16d32 --precision bf16 --append "$out"
# the generator loop on cached latents (LightningDiT-XL/1, batch 256, bf16) against its bare step
python3 benchmarks/bench_generator_training.py --device cuda --append "$out"
# LightningDiT XL/1 (batch 128) and B/1 (batch 256), bf16, against the official code as shipped
# (its torch.compile decorators on; ours torch.compile'd), after an fp32 parity check.
if [ -d .official/hustvl+LightningDiT ]; then
    python3 benchmarks/bench_generators.py --device cuda --official-root .official \
        --presets lightningdit-xl-1 lightningdit-b-1 --batch 128 256 --append "$out"
else
    echo "no .official/hustvl+LightningDiT: LightningDiT not compared" | tee -a "$out"
fi
