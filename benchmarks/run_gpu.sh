#!/usr/bin/env bash
# Every GPU benchmark and GPU test in one call, for a session that is lent a device machine.
#
# The device image has torch 2.11, timm, scikit-image and matplotlib but not the packages below,
# and no network. Prepare their wheels here first, into the ignored folder .wheels/:
#   pip download --no-deps -d .wheels pytorch-wavelets==1.3.0 PyWavelets lpips==0.1.4 \
#       torch-fidelity==0.4.0 pytorch-fid submitit einops torchdiffeq omegaconf==2.3.0 \
#       pytorch-lightning==1.9.5 lightning-utilities torchmetrics==1.4.0 \
#       --python-version 3.12 --only-binary=:all:
#   pip wheel --no-deps -w .wheels antlr4-python3-runtime==4.9.3   (omegaconf's; no wheel published)
#   (einops and torchdiffeq are for the official LightningDiT code; omegaconf, antlr4,
#    pytorch-lightning < 2, lightning-utilities, torchmetrics and einops for the official LDM
#    code (CompVis/latent-diffusion); none of them is for freqlat)
#   (pytorch-wavelets, lpips and torch-fidelity publish pure-Python wheels)
# For the comparisons against the official code in the same run, also put checkouts of
# hustvl/LightningDiT, LTH14/mar, FoundationVision/VAR, CompVis/taming-transformers and
# CompVis/latent-diffusion (ldm/ and configs/ are enough) into the ignored folder .official/ as
# owner+name (`fetch` gives them), and carry it too.
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
# LDM cin256-v2 on its 64 x 64 x 3 latents at batch 64, fp32 and bf16 (training step, forward,
# DDIM S = 20 with cfg 3) against the official UNet and DDIMSampler, after an fp32 parity check.
if [ -d .official/CompVis+latent-diffusion ]; then
    python3 benchmarks/bench_generators.py --device cuda --official-root .official \
        --presets ldm-cin256-v2 --batch 64 --append "$out" \
        || echo "LDM comparison failed" | tee -a "$out"
else
    echo "no .official/CompVis+latent-diffusion: LDM not compared" | tee -a "$out"
fi
# VAR-d16 at batch 96, fp16 and bf16 (training step from tokens and upstream's as shipped, which
# encodes the images with its ch-160 VQVAE; forward; generation to images), after an fp32
# parity check. A process of its own: its official code and LightningDiT's share a package name.
if [ -d .official/FoundationVision+VAR ]; then
    python3 benchmarks/bench_generators.py --device cuda --official-root .official \
        --presets var-d16 --batch 96 --append "$out" \
        || echo "VAR comparison failed" | tee -a "$out"
else
    echo "no .official/FoundationVision+VAR: VAR not compared" | tee -a "$out"
fi
