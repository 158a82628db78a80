"""The Triton Haar kernels against the elementwise torch path.

Without a GPU the kernels run in Triton's interpreter on CPU tensors. The interpreter is chosen
when a kernel is decorated, from ``TRITON_INTERPRET`` at that moment, and other test modules may
already have imported the kernels in this process; setting the variable here would also leak
into every later import. So one subprocess, with the variable set before anything is imported,
runs this file as a script, computes every check once and prints the results as JSON; the tests
below assert on them.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")

FLOAT32_SHAPES = [(2, 3, 8, 8), (1, 2, 7, 9), (1, 1, 1, 2), (1, 3, 5, 300)]


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    scale = reference.abs().max().clamp_min(1e-30)
    return ((value.double() - reference.double()).abs().max() / scale).item()


def _interpreter_checks() -> dict:
    """Run every check through the interpreted kernels; return errors and flags by name."""
    from freqlat.wavelets import _haar_triton as triton_haar
    from freqlat.wavelets._haar import haar_dwt2, haar_idwt2

    torch.manual_seed(0)
    results = {}
    for shape in FLOAT32_SHAPES:
        x = torch.randn(shape)
        low, high = triton_haar.haar_dwt2(x)
        ref_low, ref_high = haar_dwt2(x)
        recon = triton_haar.haar_idwt2(ref_low, ref_high)
        ref_recon = haar_idwt2(ref_low, ref_high)
        results[f"float32 {shape}"] = {
            "shapes_match": [list(low.shape), list(high.shape), list(recon.shape)]
            == [list(ref_low.shape), list(ref_high.shape), list(ref_recon.shape)],
            "low": _relative_error(low, ref_low),
            "high": _relative_error(high, ref_high),
            "recon": _relative_error(recon, ref_recon),
        }
    x = torch.randn(2, 3, 8, 10)
    low, high = triton_haar.haar_dwt2(x.contiguous(memory_format=torch.channels_last))
    ref_low, ref_high = haar_dwt2(x)
    recon = triton_haar.haar_idwt2(low.contiguous(memory_format=torch.channels_last), high)
    results["channels_last"] = {
        "low": _relative_error(low, ref_low),
        "high": _relative_error(high, ref_high),
        "recon": _relative_error(recon, haar_idwt2(ref_low, ref_high)),
    }

    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        x = torch.randn(1, 2, 7, 9).to(dtype)
        low, high = triton_haar.haar_dwt2(x)
        ref_low, ref_high = haar_dwt2(x.double())  # exact reference for the rounded input
        recon = triton_haar.haar_idwt2(low, high)
        results[str(dtype)] = {
            "dtypes_kept": low.dtype == high.dtype == recon.dtype == dtype,
            "low": _relative_error(low, ref_low),
            "high": _relative_error(high, ref_high),
            "recon": _relative_error(recon, haar_idwt2(low.double(), high.double())),
        }

    x = torch.randn(2, 2, 7, 9, requires_grad=True)
    grad_low, grad_high = torch.randn(2, 2, 4, 5), torch.randn(2, 2, 3, 4, 5)
    grads = []
    for forward in (triton_haar.haar_dwt2, haar_dwt2):
        low, high = forward(x)
        grads.append(torch.autograd.grad((low * grad_low).sum() + (high * grad_high).sum(), x)[0])
    results["forward_grad"] = _relative_error(*grads)
    low, high = torch.randn(2, 2, 4, 5, requires_grad=True), torch.randn(2, 2, 3, 4, 5)
    high.requires_grad_()
    grad_out = torch.randn(2, 2, 8, 10)
    grads = []
    for inverse in (triton_haar.haar_idwt2, haar_idwt2):
        grads.append(torch.autograd.grad((inverse(low, high) * grad_out).sum(), (low, high)))
    results["inverse_grad"] = max(_relative_error(a, b) for a, b in zip(*grads, strict=True))

    x = torch.randn(1, 1, 3, 5, dtype=torch.float64, requires_grad=True)
    results["gradcheck_forward"] = torch.autograd.gradcheck(triton_haar.haar_dwt2, (x,))
    low = torch.randn(1, 1, 2, 3, dtype=torch.float64, requires_grad=True)
    high = torch.randn(1, 1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    results["gradcheck_inverse"] = torch.autograd.gradcheck(triton_haar.haar_idwt2, (low, high))
    return results


@pytest.fixture(scope="module")
def interpreted() -> dict:
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run(
        [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("shape", FLOAT32_SHAPES)
def test_float32_kernels_match_elementwise_path_for_even_and_odd_sizes(interpreted, shape):
    result = interpreted[f"float32 {shape}"]
    assert result.pop("shapes_match")
    assert max(result.values()) <= 1e-6, result


def test_channels_last_input_gives_the_same_bands(interpreted):
    assert max(interpreted["channels_last"].values()) <= 1e-6, interpreted["channels_last"]


# fp32 arithmetic and one rounding on store: half an ulp, except that the interpreter truncates
# float32 -> bfloat16 where compiled kernels round to nearest (the CUDA test checks half an ulp).
@pytest.mark.parametrize(
    ("dtype", "tolerance"),
    [(torch.bfloat16, 2**-7), (torch.float16, 2**-11), (torch.float64, 1e-15)],
)
def test_low_precision_keeps_dtype_and_rounds_only_once(interpreted, dtype, tolerance):
    result = interpreted[str(dtype)]
    assert result.pop("dtypes_kept")
    assert max(result.values()) <= tolerance, result


def test_autograd_backward_is_the_other_kernel(interpreted):
    assert interpreted["forward_grad"] <= 1e-5
    assert interpreted["inverse_grad"] <= 1e-5


def test_gradcheck_float64(interpreted):
    assert interpreted["gradcheck_forward"]
    assert interpreted["gradcheck_inverse"]


def test_mismatched_bands_raise_value_error():
    from freqlat.wavelets import _haar_triton as triton_haar

    with pytest.raises(ValueError, match="N x C x 3 x h x w"):
        triton_haar.haar_idwt2(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 3, 4, 5))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("size", [(256, 256), (33, 47)])
def test_cuda_triton_path_matches_pytorch_wavelets(size, monkeypatch):
    from pytorch_wavelets import DWTForward, DWTInverse

    monkeypatch.setenv("FREQLAT_HAAR_BACKEND", "triton")
    from freqlat.wavelets import _haar_triton as triton_haar
    from freqlat.wavelets import haar_dwt2, haar_idwt2

    x = torch.randn(4, 3, *size, device="cuda", requires_grad=True)
    low, high = haar_dwt2(x)
    ref_low, (ref_high,) = DWTForward(J=1, wave="haar", mode="zero").cuda()(x)
    assert _relative_error(low, ref_low) <= 1e-6
    assert _relative_error(high, ref_high) <= 1e-6
    direct_low, direct_high = triton_haar.haar_dwt2(x)  # the dispatch really takes this path
    assert torch.equal(direct_low, low) and torch.equal(direct_high, high)
    recon = haar_idwt2(low, high)
    ref_recon = DWTInverse(wave="haar", mode="zero").cuda()((ref_low, [ref_high]))
    assert _relative_error(recon, ref_recon) <= 1e-6
    grad_out = torch.randn_like(recon)
    grad = torch.autograd.grad((recon * grad_out).sum(), x)[0]
    ref_grad = torch.autograd.grad((ref_recon * grad_out).sum(), x)[0]
    assert _relative_error(grad, ref_grad) <= 1e-6
    for dtype, tolerance in ((torch.bfloat16, 2**-8), (torch.float16, 2**-11)):
        rounded = x.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        low, high = haar_dwt2(rounded)
        exact_low, exact_high = haar_dwt2(rounded.double())
        assert low.dtype == high.dtype == dtype
        assert _relative_error(low, exact_low) <= tolerance
        assert _relative_error(high, exact_high) <= tolerance


if __name__ == "__main__":
    print(json.dumps(_interpreter_checks()))
