import pytest
import torch

from helpers import gpu

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")


@no_gpu
def test_without_gpu_nothing_is_capped_and_it_says_so(capsys, monkeypatch):
    monkeypatch.setenv(gpu.ENV_VARIABLE, "4")
    info = gpu.setup_device("auto")
    assert info["device"] == "cpu" and info["has_gpu"] is False
    assert info["memory_cap_gb"] == 4.0
    assert "No GPU found" in capsys.readouterr().out
    assert gpu.peak_memory_mib() is None


@no_gpu
def test_asking_for_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no GPU"):
        gpu.torch_device("cuda")


def test_explicit_cap_beats_environment(monkeypatch):
    monkeypatch.setenv(gpu.ENV_VARIABLE, "4")
    assert gpu._memory_cap_gb(2.5) == 2.5
    assert gpu._memory_cap_gb(None) == 4.0
    monkeypatch.delenv(gpu.ENV_VARIABLE)
    assert gpu._memory_cap_gb(None) is None


def test_nonpositive_cap_rejected():
    with pytest.raises(ValueError):
        gpu._memory_cap_gb(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cap_limits_torch_allocations():
    info = gpu.setup_device("cuda", memory_gb=1)
    assert info["has_gpu"] and info["torch_memory_fraction"] <= 1
    gpu.reset_peak_memory()
    with pytest.raises(torch.OutOfMemoryError):
        torch.empty(int(1.5 * 2**30), dtype=torch.uint8, device="cuda")
