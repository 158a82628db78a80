"""The Haar path on CUDA: parity with pytorch_wavelets and with our own CPU result (GPU only)."""

import pytest
import torch
from pytorch_wavelets import DWTForward, DWTInverse

from freqlat.wavelets import dwt2, haar_dwt2, haar_idwt2, idwt2

pytestmark = pytest.mark.gpu

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@requires_cuda
@pytest.mark.parametrize("size", [(64, 64), (33, 47)])
def test_cuda_haar_matches_pytorch_wavelets_and_cpu(size):
    x = torch.randn(4, 3, *size)
    low, high = haar_dwt2(x.cuda())
    ref_low, (ref_high,) = DWTForward(J=1, wave="haar", mode="zero").cuda()(x.cuda())
    scale = x.abs().max()
    assert ((low - ref_low).abs().max() / scale).item() <= 1e-6
    assert ((high - ref_high).abs().max() / scale).item() <= 1e-6
    cpu_low, cpu_high = haar_dwt2(x)
    torch.testing.assert_close(low.cpu(), cpu_low, rtol=0, atol=1e-6)
    torch.testing.assert_close(high.cpu(), cpu_high, rtol=0, atol=1e-6)
    recon = haar_idwt2(low, high)
    ref_recon = DWTInverse(wave="haar", mode="zero").cuda()((ref_low, [ref_high]))
    torch.testing.assert_close(recon, ref_recon, rtol=0, atol=1e-5)


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_low_precision_and_channels_last(dtype):
    x = torch.randn(2, 3, 64, 64, device="cuda")
    xc = x.to(dtype).contiguous(memory_format=torch.channels_last)
    low, high = haar_dwt2(xc)
    assert low.dtype == dtype
    ref_low, ref_high = haar_dwt2(x)
    eps = torch.finfo(dtype).eps
    assert ((low.float() - ref_low).abs().max() / x.abs().max()).item() <= 2 * eps
    assert ((high.float() - ref_high).abs().max() / x.abs().max()).item() <= 2 * eps


@requires_cuda
def test_cuda_gradients_match_cpu():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    xc = x.detach().cuda().requires_grad_()
    for inp in (x, xc):
        low, highs = dwt2(inp, levels=2)
        (idwt2(low, highs).square().sum() + highs[0].abs().sum()).backward()
    torch.testing.assert_close(xc.grad.cpu(), x.grad, rtol=1e-12, atol=1e-12)
