"""Every PyTorch face classifier of the course in one table: how to build it, where Grad-CAM looks,
what it is called, and how its checkpoint is saved and rebuilt.

The networks themselves live in :mod:`helpers.models_torch` (InceptionResnetV1,
the report's model) and :mod:`helpers.models_compare` (custom CNN, MesoNet,
DenseNet121). Everything that needs to know *which* networks exist goes
through this module: notebooks 04-08, the comparison, the explanations
(:func:`helpers.explain.default_target_layer` asks :func:`gradcam_layer`) and
the demo (:func:`load_checkpoint` rebuilds whatever a checkpoint holds)::

    model = model_registry.build_model("meso4", image_size=160)
    path = model_registry.save_checkpoint(model, "compare_meso4.pth", epoch=3, arch="meso4", image_size=160)
    model, metadata = model_registry.load_checkpoint(path)
    layer = model_registry.gradcam_layer(model)

The Keras video model (``models_keras``) is another framework with its own
loader; it is not in this table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from . import config, models_compare, models_torch


@dataclass(frozen=True)
class Architecture:
    """One face classifier: ``build(pretrained, image_size, device, **options)`` returns it with one logit."""

    name: str
    display_name: str
    build: Callable[..., nn.Module]
    min_image_size: int  # smallest face (pixels): below it a layer has nothing left to convolve


def _build_inception(pretrained: bool = False, image_size: int = models_torch.DEFAULT_IMAGE_SIZE,
                     device: str = "cpu", **options) -> nn.Module:
    return models_torch.build_inception_classifier(pretrained=pretrained, device=device, **options)


def _builder(name: str) -> Callable[..., nn.Module]:
    def build(pretrained: bool = False, image_size: int = 256, device: str = "cpu", **options) -> nn.Module:
        return models_compare.build_compare_model(name, pretrained=pretrained, image_size=image_size,
                                                  device=device, **options)
    return build


ARCHITECTURES = {
    models_torch.ARCH: Architecture(models_torch.ARCH, "InceptionResnetV1 + MTCNN", _build_inception,
                                    models_torch.MIN_IMAGE_SIZE[models_torch.ARCH]),
    "custom_cnn": Architecture("custom_cnn", "Custom CNN", _builder("custom_cnn"), 16),
    "meso4": Architecture("meso4", "MesoNet (Meso-4)", _builder("meso4"), 16),
    "mesoinception4": Architecture("mesoinception4", "MesoInception-4", _builder("mesoinception4"), 16),
    "densenet121": Architecture("densenet121", "DenseNet121", _builder("densenet121"), 32),
}
#: The comparison models of notebook 05 (Table 2 without InceptionResnetV1, which notebook 04 trains).
COMPARE_ARCHITECTURES = models_compare.ARCHITECTURES
#: What tables and figures call each model (and the ensemble of notebook 05).
DISPLAY_NAMES = {**{name: a.display_name for name, a in ARCHITECTURES.items()}, "ensemble": "Ensemble (mean of models)"}
MIN_IMAGE_SIZES = {name: a.min_image_size for name, a in ARCHITECTURES.items()}


def known_architectures() -> tuple:
    """Architecture names a checkpoint's ``arch`` may hold."""
    return tuple(ARCHITECTURES)


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown model {name!r}; choose from {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[name]


def build_model(name: str, pretrained: bool = False, image_size: int = 256, device: str = "cpu",
                **options) -> nn.Module:
    """Build architecture ``name`` (one logit per face); ``pretrained`` loads its published weights."""
    return architecture(name).build(pretrained=pretrained, image_size=image_size, device=device, **options)


def gradcam_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM reads for a model of this table; TypeError for any other network.

    InceptionResnetV1 (also wrapped in another module): ``block8.branch1[-1]``,
    the last convolution block of its final Inception-ResNet block, as in the
    report. The comparison models: the last convolutional stage that
    ``models_compare.gradcam_layer`` names.
    """
    for name, module in model.named_modules():
        if name == "block8.branch1" or name.endswith(".block8.branch1"):
            return module[-1]
    return models_compare.gradcam_layer(model)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(model: nn.Module, path, epoch: int, **metadata) -> Path:
    """``models_torch.save_checkpoint`` (the report's format), refusing a face size the architecture cannot take."""
    return models_torch.save_checkpoint(model, path, epoch, min_sizes=MIN_IMAGE_SIZES, **metadata)


def load_checkpoint(path, device: str = "cpu", model: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """Rebuild whatever course checkpoint ``path`` holds; returns ``(model in eval mode on device, metadata)``.

    Without ``model``, the architecture named in the file is built with random
    weights (no download) and the saved weights are loaded into it; with
    ``model``, the weights go into that one (any architecture). Files without
    metadata (the report's own checkpoint) are InceptionResnetV1 for 256-pixel
    faces. Every failure is a ``models_torch.CheckpointError``.
    """
    weights, metadata = models_torch.read_checkpoint(path, check_arch=model is None, min_sizes=MIN_IMAGE_SIZES)
    if model is None:
        model = build_model(metadata["arch"], pretrained=False,
                            image_size=int(metadata.get("image_size") or models_torch.DEFAULT_IMAGE_SIZE))
    return models_torch.load_weights(model, weights, metadata, device)


def compare_checkpoint_path(name: str) -> Path:
    """Where notebook 05 saves comparison model ``name``: ``config.models_dir() / "compare_<name>.pth"``."""
    return config.models_dir() / f"compare_{name}.pth"


def save_compare_checkpoint(model: nn.Module, name: str, image_size: int, epoch: int,
                            path: Path | None = None, **metadata) -> Path:
    """Save a comparison model with its ``arch`` and ``image_size`` (at :func:`compare_checkpoint_path` by default)."""
    path = Path(path) if path is not None else compare_checkpoint_path(name)
    return save_checkpoint(model, path, epoch, arch=name, image_size=int(image_size), **metadata)


def load_compare_checkpoint(path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model saved by :func:`save_compare_checkpoint`; returns ``(model in eval mode, metadata)``.

    A check around :func:`load_checkpoint`: the file must exist and hold one of
    the comparison architectures.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}: run notebooks/05_model_comparison.ipynb first "
                                f"(it saves compare_<model>.pth in {config.models_dir()}), or pass the path "
                                f"of such a file.")
    model, metadata = load_checkpoint(path, device=device)
    if metadata.get("arch") not in COMPARE_ARCHITECTURES:
        raise ValueError(f"{path} holds a {metadata.get('arch')!r} model, not one of "
                         f"{', '.join(COMPARE_ARCHITECTURES)}; for InceptionResnetV1 use model_registry.load_checkpoint.")
    return model, metadata
