"""Training channels-last (NHWC) gives the same model as the default order (NCHW), and is really used."""
import copy

import pytest
import torch

from helpers import training_torch


def small_cnn():
    """Convolutions, BatchNorm, dropout: the layers whose kernels differ between the two orders."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(16, 1))


def batches(n=4, size=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.arange(8) % 2).float()
    # the two classes differ in brightness, so the loss has something to learn
    return [(torch.rand(8, 3, size, size, generator=generator) * 0.5 + 0.5 * labels[:, None, None, None], labels)
            for _ in range(n)]


def train(model, channels_last):
    formats = []
    hook = model[0].register_forward_pre_hook(
        lambda module, inputs: formats.append(inputs[0].is_contiguous(memory_format=torch.channels_last)
                                              and not inputs[0].is_contiguous()))
    history = training_torch.train_classifier(model, batches(), batches(2, seed=1), epochs=3, lr=0.01,
                                              patience=None, progress=False, channels_last=channels_last)
    hook.remove()
    return history, formats


def test_channels_last_trains_the_same_model():
    start = small_cnn()
    plain, cl = copy.deepcopy(start), copy.deepcopy(start)
    history_plain, formats_plain = train(plain, channels_last=False)
    history_cl, formats_cl = train(cl, channels_last=True)
    assert history_plain["train_loss"][-1] < history_plain["train_loss"][0]  # it learned something
    assert not any(formats_plain) and all(formats_cl)  # the option changes what the layers receive
    assert not history_plain["channels_last"] and history_cl["channels_last"]
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        assert history_cl[key] == pytest.approx(history_plain[key], rel=1e-4, abs=1e-5), key
    x = batches(1, seed=2)[0][0]
    with torch.no_grad():
        assert torch.allclose(plain(x), cl(x), atol=1e-4)
    # the model comes back in the order it came in
    assert cl[0].weight.is_contiguous() and not getattr(cl, "channels_last")


def test_default_memory_format():
    assert not training_torch.use_channels_last("cpu")                # no reliable gain measured there
    assert not training_torch.use_channels_last("cuda", amp=False)    # a GPU: only with mixed precision
    model = training_torch.set_memory_format(small_cnn(), True)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last) and model.channels_last
    assert training_torch.set_memory_format(model, False)[0].weight.is_contiguous()
