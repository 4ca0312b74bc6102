"""What the face models look at (Grad-CAM) and what test-time augmentation buys.

The tools, used by notebook 06 and by the demo app:

* :func:`gradcam_torch` - Grad-CAM maps for a PyTorch face classifier with
  ``pytorch-grad-cam`` (by default on ``block8.branch1[-1]`` of facenet-pytorch's
  InceptionResnetV1, the layer the report uses), one map per face, each scaled
  to [0, 1]; :func:`gradcam_by_hand` computes the same map for one face step by
  step (notebook 06 shows it and compares the two). :func:`gradcam_keras` does
  the same for a Keras 3 model with ``keras.ops`` and the active backend's
  gradient (TensorFlow or PyTorch).
* :func:`overlay` - a heat map blended onto the *original* face (RGB uint8);
  :func:`outcome_groups` - which faces a model got right and wrong (the panels).
* test-time augmentation and the degradations live in :mod:`helpers.tta`.
* :func:`average_aligned` / :func:`region_shares` - put each Grad-CAM map
  into one canonical face frame (5 MTCNN landmarks -> a fixed template, with
  :func:`helpers.geometry.align_to_template`) so maps can be averaged over
  many faces and the share of activation on eyes, nose and mouth
  (:func:`helpers.geometry.region_masks`) can be measured.

Nothing here knows where faces come from; inputs are tensors / arrays of faces.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import geometry

# --------------------------------------------------------------------------- #
# Grad-CAM for PyTorch models
# --------------------------------------------------------------------------- #


def default_target_layer(model):
    """The layer Grad-CAM reads by default.

    For the course's models, the layer ``model_registry.gradcam_layer`` names:
    for facenet-pytorch's InceptionResnetV1 (also when it is wrapped in another
    module) ``block8.branch1[-1]``, the last convolution block of the network's
    final Inception-ResNet block, as in the report; for the comparison models
    (custom CNN, MesoNet, DenseNet121) their last convolutional stage. For any
    other network: the last ``Conv2d`` module.
    """
    import torch.nn as nn

    from . import model_registry

    try:
        return model_registry.gradcam_layer(model)
    except TypeError:
        pass
    last_conv = None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            last_conv = module
    if last_conv is None:
        raise ValueError("The model has no Conv2d layer; pass target_layer= explicitly.")
    return last_conv


def _resolve_layer(model, target_layer):
    if target_layer is None:
        return default_target_layer(model)
    if isinstance(target_layer, str):
        return model.get_submodule(target_layer)
    return target_layer


def _one_logit(model):
    """Wrap a model so that it returns shape (N, 1), whether it returned (N,) or (N, 1)."""
    import torch.nn as nn

    class OneLogit(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x)
            return out.reshape(out.shape[0], -1)

    return OneLogit(model)


class _LogitTarget:
    """Grad-CAM target: the FAKE logit (sign=+1) or its negation (evidence for REAL)."""

    def __init__(self, sign: float = 1.0):
        self.sign = sign

    def __call__(self, output):
        return self.sign * (output[0] if output.ndim == 1 else output[:, 0])


def save_modes(model) -> list:
    """Each submodule's train/eval flag (a model may keep frozen parts in eval mode while training).

    Grad-CAM and :func:`helpers.tta.tta_probs` switch the model to eval mode and
    put every flag back afterwards with :func:`restore_modes`.
    """
    return [(module, module.training) for module in model.modules()]


def restore_modes(modes: list) -> None:
    for module, training in modes:
        module.training = training


def normalise_map(cam: np.ndarray) -> np.ndarray:
    """Min-max scale one map to [0, 1]; a constant map becomes all zeros."""
    cam = np.asarray(cam, dtype=np.float32)
    low, high = float(cam.min()), float(cam.max())
    if not math.isfinite(low) or not math.isfinite(high) or high - low < 1e-12:
        return np.zeros_like(cam, dtype=np.float32)
    return (cam - low) / (high - low)


def gradcam_torch(model, faces_tensor, target_layer=None, towards: str = "fake",
                  batch_size: int = 16, device=None) -> np.ndarray:
    """Grad-CAM maps, shape (N, H, W), float32, each map scaled to [0, 1].

    ``model`` returns one logit per face (P(FAKE) = sigmoid(logit));
    ``faces_tensor`` is (N, 3, H, W) or a single (3, H, W) face, scaled as the
    model expects. ``target_layer`` is a module, a dotted name
    (``"block8.branch1.2"``) or None for :func:`default_target_layer`.
    ``towards="fake"`` explains the FAKE logit (``ClassifierOutputTarget(0)``
    as in the report); ``"real"`` explains its negation. The train/eval mode of
    every submodule, ``requires_grad`` and the parameters' ``.grad`` are left
    as found.

    A map is all zeros when no location pushed the logit the asked way (Grad-CAM
    keeps only positive evidence); :func:`cam_stats` counts such maps. Note the
    map has the resolution of the target layer: InceptionResnetV1 on a 96 px
    face gives a 1x1 map (no spatial information); use at least 128 px.
    """
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if towards not in ("fake", "real"):
        raise ValueError("towards must be 'fake' or 'real'.")
    faces = torch.as_tensor(faces_tensor, dtype=torch.float32)
    if faces.ndim == 3:
        faces = faces.unsqueeze(0)
    if faces.ndim != 4:
        raise ValueError(f"Expected faces of shape (N, 3, H, W), got {tuple(faces.shape)}.")
    layer = _resolve_layer(model, target_layer)
    if device is not None:
        model.to(device)
    modes = save_modes(model)
    saved_grads = [(p, p.grad) for p in model.parameters()]
    wrapped = _one_logit(model)
    maps = []
    cam = GradCAM(model=wrapped, target_layers=[layer])
    try:
        with torch.enable_grad():
            for start in range(0, len(faces), batch_size):
                chunk = faces[start:start + batch_size].clone()
                # Input gradients make the hooks fire even when the backbone is frozen.
                chunk.requires_grad_(True)
                targets = ([ClassifierOutputTarget(0)] if towards == "fake" else [_LogitTarget(-1.0)]) * len(chunk)
                maps.append(np.asarray(cam(input_tensor=chunk, targets=targets), dtype=np.float32))
    finally:
        cam.activations_and_grads.release()
        restore_modes(modes)
        for parameter, grad in saved_grads:  # leave no Grad-CAM gradients behind
            parameter.grad = grad
    maps = np.concatenate(maps, axis=0) if maps else np.zeros((0,) + tuple(faces.shape[-2:]), np.float32)
    return np.stack([normalise_map(m) for m in maps]) if len(maps) else maps


def gradcam_by_hand(model, face, target_layer) -> np.ndarray:
    """Grad-CAM of the FAKE logit for one face, written out step by step; an (H, W) map in [0, 1].

    What ``pytorch-grad-cam`` computes (notebook 06 compares the two): a forward
    hook keeps the target layer's output A (channels x h x w); the gradient of
    the FAKE logit with respect to A says how much each location of each
    channel pushes the verdict towards FAKE; each channel's weight is its
    gradient averaged over the locations; the map is the weighted sum of the
    channels, ReLU keeps the positive evidence, and it is upsampled to the
    face's size and scaled to [0, 1]. ``model`` returns one logit per face and
    must be in eval mode; ``face`` is a (3, H, W) tensor as the model expects.
    """
    import torch
    import torch.nn.functional as F

    if model.training:
        raise ValueError("Call model.eval() first: Grad-CAM explains the model as it predicts.")
    kept = {}
    hook = target_layer.register_forward_hook(lambda module, inputs, output: kept.update(activations=output))
    try:
        # Asking for input gradients makes the graph reach the layer even when the backbone is frozen.
        x = face.detach().unsqueeze(0).to(next(model.parameters()).device).requires_grad_(True)
        with torch.enable_grad():
            fake_logit = model(x).reshape(-1)[0]
            (gradients,) = torch.autograd.grad(fake_logit, kept["activations"])
    finally:
        hook.remove()
    activations = kept["activations"].detach()                       # (1, C, h, w)
    weights = gradients.mean(dim=(2, 3), keepdim=True)                 # (1, C, 1, 1): mean gradient per channel
    cam = F.relu((weights * activations).sum(dim=1, keepdim=True))     # (1, 1, h, w): positive evidence only
    cam = F.interpolate(cam, size=tuple(face.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    cam = cam - cam.min()
    return (cam / cam.max().clamp_min(1e-12)).cpu().numpy().astype(np.float32)


def cam_stats(cams: np.ndarray) -> dict:
    """min / max / std per map and how many maps are constant (carry no information)."""
    cams = np.asarray(cams, dtype=np.float32)
    flat = cams.reshape(len(cams), -1)
    stds = flat.std(axis=1)
    return {
        "n": int(len(cams)),
        "shape": list(cams.shape[1:]),
        "min": flat.min(axis=1).round(4).tolist(),
        "max": flat.max(axis=1).round(4).tolist(),
        "std": stds.round(4).tolist(),
        "n_constant": int((stds < 1e-6).sum()),
    }


OUTCOMES = ("REAL, right", "REAL, wrong", "FAKE, right", "FAKE, wrong")


def outcome_groups(labels, probs, per_group: int | None = None, threshold: float = 0.5):
    """Which faces the model got right and wrong, by true label: ``(picked, counts)``.

    ``counts`` maps each of :data:`OUTCOMES` to its number of faces; ``picked``
    maps it to at most ``per_group`` indices into ``labels``: for a mistake the
    most confident ones first (the mistakes worth looking at), for a right
    verdict faces spread evenly over the group (so over the videos, in table
    order). A group with no face gets an empty array.
    """
    labels = np.asarray(labels, dtype=int).ravel()
    probs = np.asarray(probs, dtype=float).ravel()
    if labels.shape != probs.shape:
        raise ValueError(f"{labels.size} labels but {probs.size} probabilities.")
    verdict = (probs >= threshold).astype(int)
    picked, counts = {}, {}
    for name in OUTCOMES:
        label, right = int(name.startswith("FAKE")), name.endswith("right")
        members = np.flatnonzero((labels == label) & ((verdict == label) == right))
        counts[name] = int(members.size)
        take = members.size if per_group is None else min(int(per_group), members.size)
        if not right:
            members = members[np.argsort(-np.abs(probs[members] - threshold), kind="stable")][:take]
        elif take:
            members = members[np.unique(np.round(np.linspace(0, members.size - 1, take)).astype(int))]
        else:
            members = members[:0]
        picked[name] = members
    return picked, counts


# --------------------------------------------------------------------------- #
# Overlays
# --------------------------------------------------------------------------- #


def to_float_rgb(face) -> np.ndarray:
    """An RGB face as float32 in [0, 1], from uint8 (0..255), float [0, 1] or a CHW tensor."""
    if hasattr(face, "detach"):
        face = face.detach().cpu().numpy()
    face = np.asarray(face)
    if face.ndim == 3 and face.shape[0] in (1, 3) and face.shape[-1] not in (1, 3):
        face = np.transpose(face, (1, 2, 0))
    if face.ndim == 2:
        face = np.repeat(face[..., None], 3, axis=-1)
    if face.shape[-1] == 1:
        face = np.repeat(face, 3, axis=-1)
    if face.dtype == np.uint8:
        return face.astype(np.float32) / 255.0
    face = face.astype(np.float32)
    if face.max() > 1.0 + 1e-6:
        raise ValueError("A float face must be scaled to [0, 1] (got values above 1); "
                         "pass uint8 for 0..255 images.")
    return np.clip(face, 0.0, 1.0)


def overlay(face, cam, alpha: float = 0.45) -> np.ndarray:
    """Blend a Grad-CAM map onto the original face; returns RGB uint8 (H, W, 3).

    ``face`` is RGB uint8 or float in [0, 1] (HWC, or a CHW tensor); ``cam`` is
    a map in [0, 1] (resized to the face if needed). ``alpha`` is the heat
    map's weight. The face is passed to ``show_cam_on_image`` as float [0, 1]
    RGB - casting it to int first (as the report's code does) turns it black.
    """
    import cv2
    from pytorch_grad_cam.utils.image import show_cam_on_image

    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1].")
    image = to_float_rgb(face)
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"cam must be a 2-D map, got shape {cam.shape}.")
    if cam.shape != image.shape[:2]:
        cam = cv2.resize(cam, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    cam = np.clip(cam, 0.0, 1.0)
    return show_cam_on_image(image, cam, use_rgb=True, image_weight=1.0 - alpha)


# --------------------------------------------------------------------------- #
# Landmark alignment and region shares
# --------------------------------------------------------------------------- #

# The template and the warp live in helpers.geometry (the sample, faces and explanation share them).


def average_aligned(maps, landmarks, size: int = 112):
    """Align each map to the template and average them where they are defined.

    ``maps``: (N, H, W); ``landmarks``: (N, 5, 2) in the maps' pixels. Returns
    ``(mean_map, coverage)``: the per-pixel mean over the faces that cover the
    pixel, and the share of faces covering it.
    """
    maps = np.asarray(maps, dtype=np.float32)
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(len(maps), -1, 2)
    total = np.zeros((size, size), np.float64)
    count = np.zeros((size, size), np.float64)
    for cam, points in zip(maps, landmarks):
        aligned, valid = geometry.align_to_template(cam, points, size=size)
        total += aligned * valid
        count += valid
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean.astype(np.float32), (count / max(1, len(maps))).astype(np.float32)


def region_shares(mean_map, coverage=None, regions=None) -> dict:
    """Share of the (aligned, averaged) activation in each region vs the region's share of area.

    Only pixels covered by at least half the faces count. ``ratio`` > 1 means a
    region draws more activation than its size alone would give it.
    """
    mean_map = np.asarray(mean_map, dtype=np.float64)
    size = mean_map.shape[0]
    regions = geometry.region_masks(size) if regions is None else regions
    used = np.ones_like(mean_map, bool) if coverage is None else np.asarray(coverage) >= 0.5
    total_activation = float(mean_map[used].sum())
    total_area = float(used.sum())
    shares = {}
    for name, mask in regions.items():
        inside = mask & used
        activation = float(mean_map[inside].sum()) / total_activation if total_activation > 0 else float("nan")
        area = float(inside.sum()) / total_area if total_area > 0 else float("nan")
        shares[name] = {"activation_share": activation, "area_share": area,
                        "ratio": activation / area if area > 0 and math.isfinite(activation) else float("nan")}
    return shares


def describe_region_shares(shares: dict, who: str, n_faces: int,
                           regions: Sequence[str] = ("eyes", "nose", "mouth"), margin: float = 0.1,
                           claim: Sequence[str] = ("eyes", "mouth")) -> str:
    """One sentence computed from :func:`region_shares`, and what it says about a claim.

    A region counts as drawing "more" (or "less") activation than its area when
    the ratio is above ``1 + margin`` (below ``1 - margin``). The claim (by
    default the report's "eyes and mouth drive the decision") is *supported*
    when every region it names draws more, *partly supported* when some do.
    """
    parts, more, less, even = [], [], [], []
    for name in regions:
        entry = shares[name]
        ratio = entry["ratio"]
        parts.append(f"{name} {100 * entry['activation_share']:.0f}% of the activation on "
                     f"{100 * entry['area_share']:.0f}% of the area (x{ratio:.2f})")
        (more if ratio > 1 + margin else less if ratio < 1 - margin else even).append(name)
    groups = [f"{label}: {', '.join(names)}" for label, names in
              (("more than their area", more), ("less", less), ("about their area", even)) if names]
    backing = [name for name in claim if name in more]
    if len(backing) == len(claim):
        verdict = "supported"
    elif backing:
        verdict = f"partly supported (only the {', '.join(backing)})"
    else:
        verdict = "not supported"
    return (f"Over {n_faces} {who} faces: {'; '.join(parts)}. {'; '.join(groups).capitalize()}. "
            f"The claim that the {' and '.join(claim)} drive the decision is {verdict} by these maps.")


# --------------------------------------------------------------------------- #
# Grad-CAM for Keras 3 models (TensorFlow, PyTorch or JAX backend)
# --------------------------------------------------------------------------- #


def _is_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _nested(layer):
    """(inner model, time_distributed) for a nested model or TimeDistributed(model); else (None, False)."""
    import keras

    if isinstance(layer, keras.layers.TimeDistributed):
        inner = layer.layer
        return (inner, True) if _is_model(inner) else (None, True)
    return (layer, False) if _is_model(layer) else (None, False)


def _chain_layers(model) -> list:
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def default_keras_layer(model) -> str:
    """Name of the last layer with a spatial (H x W x C) output, looking inside nested models.

    For a ResNet50 backbone (also inside ``TimeDistributed``) this is
    ``conv5_block3_out``, the last residual block's output.
    """
    found = None
    for layer in _chain_layers(model):
        inner, time_distributed = _nested(layer)
        if inner is not None:
            try:
                found = default_keras_layer(inner)
            except ValueError:
                pass
            continue
        rank = len(layer.output.shape)
        if rank == 4 or (time_distributed and rank == 5):
            found = layer.name
    if found is None:
        raise ValueError("No layer with a spatial output (rank 4) found; pass layer_name=.")
    return found


def _run(layers, x):
    for layer in layers:
        x = layer(x, training=False)
    return x


# Frames per call of a video model's frame CNN up to the Grad-CAM layer: a Keras model keeps each
# layer's output until its call returns (about 140 MiB per 224 px ResNet50 frame; a CPU estimate,
# see docs/gpu_4gb.md).
GRADCAM_FRAMES_PER_CALL = 8


def _split_chain(layers, name):
    """Split a chain of layers at the layer called ``name`` (possibly nested): (before_fn, after_fn)."""
    from keras import ops

    for i, layer in enumerate(layers):
        before, after = layers[:i], layers[i + 1:]
        if layer.name == name:
            return (lambda x, b=before + [layer]: _run(b, x)), (lambda a, r=after: _run(r, a))
        inner, time_distributed = _nested(layer)
        if inner is None:
            continue
        split = _split_model(inner, name)
        if split is None:
            continue
        inner_pre, inner_post = split
        if not time_distributed:
            return ((lambda x, b=before, p=inner_pre: p(_run(b, x))),
                    (lambda a, q=inner_post, r=after: _run(r, q(a))))
        frames = {}

        def pre(x, b=before, p=inner_pre):
            x = _run(b, x)
            frames["n"], frames["t"] = int(x.shape[0]), int(x.shape[1])
            flat = ops.reshape(x, (-1,) + tuple(x.shape[2:]))
            k = GRADCAM_FRAMES_PER_CALL  # the frame CNN sees each frame on its own: a few per call is exact
            return ops.concatenate([p(flat[i:i + k]) for i in range(0, int(flat.shape[0]), k)], axis=0)

        def post(a, q=inner_post, r=after):
            y = q(a)
            y = ops.reshape(y, (frames["n"], frames["t"]) + tuple(y.shape[1:]))
            return _run(r, y)

        return pre, post
    return None


def _split_model(model, name):
    import keras

    direct = {layer.name: layer for layer in model.layers}
    if name in direct and not isinstance(model, keras.Sequential):
        target = direct[name]
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        features = keras.Model(inputs, target.output)
        # Keras 3 builds a model from an intermediate tensor by cloning the graph after it,
        # so residual connections after the split are kept.
        if target.output is model.outputs[0]:
            return (lambda x: features(x, training=False)), (lambda a: a)
        rest = keras.Model(target.output, model.outputs[0])
        return (lambda x: features(x, training=False)), (lambda a: rest(a, training=False))
    return _split_chain(_chain_layers(model), name)


def _no_gradient():
    """A context without gradient tracking on Keras' torch backend (TensorFlow records only under a tape)."""
    import contextlib

    import keras

    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _keras_gradient(head, features, sign: float):
    """d(sign * score)/d(features) with the active backend's autodiff; score = the model's first output."""
    import keras
    from keras import ops

    backend = keras.backend.backend()

    def score(a):
        out = head(a)
        return sign * ops.sum(ops.reshape(out, (ops.shape(out)[0], -1))[:, 0])

    if backend == "tensorflow":
        import tensorflow as tf

        features = tf.convert_to_tensor(features)
        with tf.GradientTape() as tape:
            tape.watch(features)
            value = score(features)
        return features, tape.gradient(value, features)
    if backend == "torch":
        import torch

        features = features.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            value = score(features)
            (gradient,) = torch.autograd.grad(value, features)
        return features.detach(), gradient
    if backend == "jax":
        import jax

        return features, jax.grad(score)(features)
    raise NotImplementedError(f"gradcam_keras supports the tensorflow, torch and jax backends, not {backend!r}.")


def gradcam_keras(model, inputs, layer_name: str | None = None, towards: str = "fake",
                  batch_size: int = 4) -> np.ndarray:
    """Grad-CAM for a Keras 3 model whose first output is P(FAKE) (or a FAKE logit).

    Works on an image model (inputs (N, H, W, 3) -> maps (N, H, W)) and on a
    video model with a ``TimeDistributed`` CNN such as the course's ResNet50 +
    LSTM (inputs (N, T, H, W, 3) -> one map per frame, (N, T, H, W)): the
    gradient of the video's score flows back through the LSTM to each frame's
    feature map. ``layer_name`` defaults to :func:`default_keras_layer`
    (``conv5_block3_out`` for ResNet50). Outside the nested model that holds
    the chosen layer, the model must be a chain of layers (true of
    Sequential-style models such as ResNet50 -> LSTM -> Dense). Arithmetic uses
    ``keras.ops``; the gradient comes from ``tf.GradientTape`` on TensorFlow,
    ``torch.autograd`` on PyTorch (and ``jax.grad`` on JAX).
    Pass ``inputs`` exactly as ``model.predict`` expects them (same preprocessing).
    """
    from keras import ops

    if towards not in ("fake", "real"):
        raise ValueError("towards must be 'fake' or 'real'.")
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim not in (4, 5):
        raise ValueError(f"Expected (N, H, W, C) or (N, T, H, W, C) inputs, got shape {inputs.shape}.")
    name = layer_name or default_keras_layer(model)
    split = _split_chain(_chain_layers(model), name)
    if split is None:
        raise ValueError(f"Layer {name!r} not found in the model (nor in its nested models).")
    pre, head = split
    height, width = inputs.shape[-3], inputs.shape[-2]
    sign = 1.0 if towards == "fake" else -1.0
    maps = []
    for start in range(0, len(inputs), batch_size):
        chunk = ops.convert_to_tensor(inputs[start:start + batch_size])
        with _no_gradient():  # only the head's gradient is needed: keep no graph of the layers before
            features = pre(chunk)
        features, gradient = _keras_gradient(head, features, sign)
        if len(features.shape) == 5:  # TimeDistributed layer split at the outer level
            features = ops.reshape(features, (-1,) + tuple(features.shape[2:]))
            gradient = ops.reshape(gradient, (-1,) + tuple(gradient.shape[2:]))
        weights = ops.mean(gradient, axis=(1, 2))  # one weight per channel
        cam = ops.relu(ops.sum(features * weights[:, None, None, :], axis=-1))
        cam = ops.image.resize(cam[..., None], (height, width), interpolation="bilinear")[..., 0]
        maps.append(np.asarray(ops.convert_to_numpy(cam), dtype=np.float32))
    maps = np.concatenate(maps, axis=0)
    maps = np.stack([normalise_map(m) for m in maps])
    if inputs.ndim == 5:
        maps = maps.reshape(inputs.shape[0], inputs.shape[1], height, width)
    return maps
