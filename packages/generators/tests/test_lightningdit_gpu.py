"""LightningDiT on a CUDA device: the same numbers as on the CPU, bf16 close to fp32, and the
torch.compile'd model (as benchmarks/bench_generators.py times it) equal to the eager one."""

import pytest
import torch

from freqlat.generators import create_generator, sample_flow

pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)

SMALL = dict(input_size=8, in_channels=6, hidden_size=64, depth=2, num_heads=4, num_classes=10)


@pytest.fixture
def exact_fp32():
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = saved


def _model_and_inputs():
    torch.manual_seed(0)
    model = create_generator("lightningdit-tiny", **SMALL)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != "pos_embed":
                param.add_(0.05 * torch.randn(param.shape))
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(4, 6, 8, 8, generator=g), torch.rand(4, generator=g)
    return model.eval(), x, t, torch.randint(0, 10, (4,), generator=g)


def test_cuda_matches_cpu_and_bf16_stays_close(exact_fp32):
    model, x, t, y = _model_and_inputs()
    with torch.no_grad():
        cpu = model(x, t, y)
        cpu_sample = sample_flow(model, x, y, steps=6, cfg_scale=4.0, timestep_shift=0.3)
        model.cuda()
        args = (x.cuda(), t.cuda(), y.cuda())
        torch.testing.assert_close(model(*args).cpu(), cpu, rtol=0, atol=1e-4)
        cuda_sample = sample_flow(
            model, args[0], args[2], steps=6, cfg_scale=4.0, timestep_shift=0.3
        )
        torch.testing.assert_close(cuda_sample.cpu(), cpu_sample, rtol=0, atol=1e-4)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(*args).float().cpu()
    assert (low - cpu).abs().max() < 0.03 * cpu.abs().max()


def test_compiled_model_equals_the_eager_one(exact_fp32):
    model, x, t, y = _model_and_inputs()
    model.cuda()
    args = (x.cuda(), t.cuda(), y.cuda())
    with torch.no_grad():
        eager = model(*args)
        compiled = torch.compile(model)(*args)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-4)
