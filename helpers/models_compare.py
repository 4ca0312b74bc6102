"""The other face classifiers of the report's comparison (its Table 2), in PyTorch.

The report ranks four models: a custom CNN, InceptionResnetV1 on MTCNN faces
(``models_torch``), MesoNet and DenseNet121. This module holds the three that
``models_torch`` does not, written so that all four are interchangeable:

* each is an ``nn.Module`` that takes a batch of RGB faces scaled to [0, 1]
  (``FaceCropDataset``'s output) and returns **one logit per face**
  (``sigmoid(logit)`` = probability of FAKE), so ``training_torch`` trains and
  evaluates every one of them with the same loop and the same loss;
* ``helpers.model_registry`` knows them all (with InceptionResnetV1): it
  builds each by name, names its Grad-CAM layer and display name, and saves
  it at ``config.models_dir() / "compare_<name>.pth"`` with ``arch`` and
  ``image_size`` in the metadata (``model_registry.save_compare_checkpoint``),
  which ``model_registry.load_checkpoint`` rebuilds.

The models:

``custom_cnn``
    Our own small network (the report does not describe its "custom model").
    Four blocks of 3x3 convolution, batch normalisation, ReLU and 2x2 max
    pooling, doubling the channels (16, 32, 64, 128), then global average
    pooling, dropout and one linear unit; about 98 thousand parameters. Why this
    shape: 3x3 convolutions stacked four deep see a 46-pixel window, enough for
    the blending seams, blur and colour mismatches a face swap leaves;
    batch normalisation lets it train from random weights at a usual learning
    rate; global average pooling makes it work at any crop size (96, 160 or 256
    px, the course's profiles) and keeps the head tiny, which matters with a few
    hundred training videos. It sits between MesoNet (28 thousand) and the
    ImageNet/face networks (millions).
``meso4``
    Meso-4 of Afchar et al., "MesoNet: a Compact Facial Video Forgery Detection
    Network" (WIFS 2018): convolutions of 8 3x3, 8 5x5, 16 5x5 and 16 5x5
    filters ("same" padding, ReLU), each followed by batch normalisation and max
    pooling of 2, 2, 2 and 4; then dropout 0.5, a dense layer of 16 units with
    LeakyReLU(0.1), dropout 0.5 and the output unit. At its published 256x256
    input it has 27,977 trainable parameters, the number the paper gives.
``mesoinception4``
    MesoInception-4 from the same paper: the first two convolutions replaced by
    inception modules whose branches use 1x1 convolutions and 3x3 convolutions
    dilated by 1, 2 and 3; 28,615 trainable parameters at 256x256 by our count of
    the published layers (the paper: about 28 thousand for either network).
``densenet121``
    torchvision's DenseNet121 (Huang et al. 2017) with its 1000-class layer
    replaced by one logit: 6,954,881 parameters. ``pretrained=True`` loads the
    ImageNet weights (``DenseNet121_Weights.DEFAULT``); the model normalises its
    [0, 1] input with the ImageNet mean and standard deviation itself, so it
    reads the same tensors as the other models.

The models know nothing about videos or files; they map face tensors to logits.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from . import config

ARCHITECTURES = ("custom_cnn", "meso4", "mesoinception4", "densenet121")

# Table 2 of the report: accuracy on its DFDC subset, train and test. Which of
# our models each row corresponds to; MesoNet is taken to be Meso-4.
PUBLISHED_TABLE2 = {
    "custom_cnn": {"report_name": "Custom Model", "train_accuracy": 0.8523, "test_accuracy": 0.8057},
    "inception_resnet_v1": {"report_name": "ResNetV1 + MTCNN", "train_accuracy": 0.9795, "test_accuracy": 0.9463},
    "meso4": {"report_name": "MesoNet", "train_accuracy": 0.9568, "test_accuracy": 0.8997},
    "densenet121": {"report_name": "DenseNet121", "train_accuracy": 0.9699, "test_accuracy": 0.9181},
}

# Trainable parameters at 256x256 input: Meso-4's as stated in the MesoNet paper;
# MesoInception-4's and DenseNet121's (one-unit classifier) worked out from the
# published layers (torchvision's 7,978,856 minus the 1000-way layer, plus a 1-way one).
PUBLISHED_PARAMETERS = {"meso4": 27_977, "mesoinception4": 28_615, "densenet121": 6_954_881}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- custom CNN
class CustomCNN(nn.Module):
    """Small from-scratch face classifier: 4 x (conv3x3-BN-ReLU-maxpool) -> GAP -> dropout -> 1 logit."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128), dropout: float = 0.3):
        super().__init__()
        blocks = []
        previous = 3
        for width in channels:
            blocks.append(nn.Sequential(
                nn.Conv2d(previous, width, kernel_size=3, padding=1, bias=False),  # BN supplies the bias
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ))
            previous = width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(previous, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


# --------------------------------------------------------------------------- MesoNet
def _same_pool_size(size: int, pools=(2, 2, 2, 4)) -> int:
    """Side of the feature map after Keras-style 'same' max pooling (ceil division)."""
    for pool in pools:
        size = math.ceil(size / pool)
    return size


class _MesoBlock(nn.Sequential):
    """Conv ('same' padding) -> ReLU -> BatchNorm -> MaxPool, in the order of the MesoNet code."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, pool: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_channels),
            nn.MaxPool2d(pool, ceil_mode=True),  # ceil_mode mimics Keras padding="same"
        )


class _MesoHead(nn.Sequential):
    """Flatten -> Dropout(0.5) -> Dense(16) -> LeakyReLU(0.1) -> Dropout(0.5) -> Dense(1)."""

    def __init__(self, in_features: int):
        super().__init__(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(in_features, 16),
            nn.LeakyReLU(0.1),
            nn.Dropout(0.5),
            nn.Linear(16, 1),
        )


class _MesoNet(nn.Module):
    """MesoInception-4's frame (Meso-4 spells the same out in one class): the dense head depends on the input size."""

    def __init__(self, image_size: int):
        super().__init__()
        if image_size < 16:
            raise ValueError(f"MesoNet needs faces of at least 16x16 pixels, got {image_size}.")
        self.image_size = int(image_size)
        self.feature_side = _same_pool_size(self.image_size)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"{type(self).__name__} was built for {self.image_size}x{self.image_size} faces "
                f"(its dense layer depends on the size) but got a batch of shape {tuple(x.shape)}. "
                f"Build it with image_size={x.shape[-1]} or resize the faces.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.head(self.features(x))


class Meso4(nn.Module):
    """Meso-4 (Afchar et al. 2018); 27,977 trainable parameters at ``image_size=256``.

    Four blocks of convolution ("same" padding), ReLU, batch normalisation and
    max pooling, then dropout, a 16-unit dense layer with LeakyReLU(0.1),
    dropout and one output logit. The paper's input is 256x256; other sizes keep
    every layer and only change the width of the first dense layer (16 x side x
    side inputs, side = image_size / 32 rounded up).
    """

    def __init__(self, image_size: int = 256):
        super().__init__()
        if image_size < 16:
            raise ValueError(f"MesoNet needs faces of at least 16x16 pixels, got {image_size}.")
        self.image_size = int(image_size)
        self.feature_side = math.ceil(self.image_size / 32)  # after pooling by 2, 2, 2 and 4 ("same")

        def block(in_channels, out_channels, kernel, pool):  # in the order of the authors' Keras code
            return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
                                 nn.ReLU(inplace=True), nn.BatchNorm2d(out_channels),
                                 nn.MaxPool2d(pool, ceil_mode=True))  # ceil_mode: Keras' padding="same"
        self.features = nn.Sequential(block(3, 8, 3, 2), block(8, 8, 5, 2), block(8, 16, 5, 2), block(16, 16, 5, 4))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * self.feature_side ** 2, 16),
                                  nn.LeakyReLU(0.1), nn.Dropout(0.5), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"Meso4 was built for {self.image_size}x{self.image_size} faces (its dense layer "
                             f"depends on the size) but got a batch of shape {tuple(x.shape)}. Build it with "
                             f"image_size={x.shape[-1]} or resize the faces.")
        return self.head(self.features(x))


class _InceptionLayer(nn.Module):
    """MesoInception's module: 1x1 | 1x1->3x3 | 1x1->3x3 dilated 2 | 1x1->3x3 dilated 3, concatenated."""

    def __init__(self, in_channels: int, a: int, b: int, c: int, d: int):
        super().__init__()

        def conv(cin, cout, kernel, dilation=1):
            return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation),
                                 nn.ReLU(inplace=True))

        self.branch1 = conv(in_channels, a, 1)
        self.branch2 = nn.Sequential(conv(in_channels, b, 1), conv(b, b, 3))
        self.branch3 = nn.Sequential(conv(in_channels, c, 1), conv(c, c, 3, dilation=2))
        self.branch4 = nn.Sequential(conv(in_channels, d, 1), conv(d, d, 3, dilation=3))
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class MesoInception4(_MesoNet):
    """MesoInception-4 (Afchar et al. 2018); 28,615 trainable parameters at ``image_size=256`` (our count)."""

    def __init__(self, image_size: int = 256):
        super().__init__(image_size)
        first = _InceptionLayer(3, 1, 4, 4, 2)
        second = _InceptionLayer(first.out_channels, 2, 4, 4, 2)
        self.features = nn.Sequential(
            first, nn.BatchNorm2d(first.out_channels), nn.MaxPool2d(2, ceil_mode=True),
            second, nn.BatchNorm2d(second.out_channels), nn.MaxPool2d(2, ceil_mode=True),
            _MesoBlock(second.out_channels, 16, 5, 2),
            _MesoBlock(16, 16, 5, 4),
        )
        self.head = _MesoHead(16 * self.feature_side ** 2)


# --------------------------------------------------------------------------- DenseNet121
class DenseNet121Classifier(nn.Module):
    """torchvision DenseNet121 with ImageNet input normalisation built in and a 1-logit classifier."""

    def __init__(self, pretrained: bool = False, memory_efficient: bool = False):
        super().__init__()
        weights = _densenet_weights() if pretrained else None
        net = _load_densenet(weights, memory_efficient)
        net.classifier = nn.Linear(net.classifier.in_features, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.net = net

    @property
    def features(self) -> nn.Module:
        return self.net.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def _densenet_weights():
    from torchvision.models import DenseNet121_Weights

    return DenseNet121_Weights.DEFAULT


def densenet_weights_path() -> Path:
    """Where torchvision keeps (or would download) the ImageNet DenseNet121 weights."""
    url = _densenet_weights().url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _load_densenet(weights, memory_efficient: bool):
    from torchvision.models import densenet121

    if weights is None:
        return densenet121(weights=None, memory_efficient=memory_efficient)
    try:
        return densenet121(weights=weights, memory_efficient=memory_efficient)
    except Exception as error:  # offline (URLError), a proxy, or a half-downloaded file
        target = densenet_weights_path()
        raise RuntimeError(
            f"Could not load the ImageNet DenseNet121 weights ({type(error).__name__}: {error}). "
            f"Either set PRETRAINED = False (random initialisation), or put the file "
            f"{weights.url} at {target} (torchvision reads it from there; set TORCH_HOME to move "
            f"the cache) and run again.") from error


# --------------------------------------------------------------------------- building and checkpoints
def build_compare_model(name: str, pretrained: bool = False, image_size: int = 256,
                        device: str = "cpu", **options) -> nn.Module:
    """Build one of :data:`ARCHITECTURES` returning one logit per face.

    ``pretrained`` only concerns DenseNet121 (ImageNet weights); the custom CNN
    and MesoNet have no public PyTorch weights and always start from random ones.
    ``image_size`` matters for MesoNet, whose dense layer depends on it.
    """
    if name == "custom_cnn":
        model = CustomCNN(**options)
    elif name == "meso4":
        model = Meso4(image_size=image_size)
    elif name == "mesoinception4":
        model = MesoInception4(image_size=image_size)
    elif name == "densenet121":
        model = DenseNet121Classifier(pretrained=pretrained, **options)
    else:
        raise ValueError(f"Unknown model {name!r}; choose from {', '.join(ARCHITECTURES)}.")
    return model.to(device)


def gradcam_layer(model: nn.Module) -> nn.Module:
    """A sensible last convolutional stage for Grad-CAM on the models of this module."""
    if isinstance(model, CustomCNN):
        return model.features[-1]
    if isinstance(model, (Meso4, _MesoNet)):
        return model.features[-1]
    if isinstance(model, DenseNet121Classifier):
        return model.net.features.denseblock4
    raise TypeError(f"No Grad-CAM layer known for {type(model).__name__}.")
