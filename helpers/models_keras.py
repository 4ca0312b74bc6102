"""The report's temporal model in Keras 3: ResNet50 per frame, an LSTM over the frames.

Architecture (as the report gives it)::

    face sequence (T, H, W, 3), values in [0, 1]
      -> TimeDistributed( ImageNet preprocessing -> ResNet50 (frozen, no top)
                          -> global average pooling )         (T, 2048)
      -> LSTM(2048) -> LeakyReLU -> Dropout(0.4)
      -> Dense(2048, relu) -> Dense(1, sigmoid)               P(FAKE) per video

compiled with Adam, binary cross-entropy, accuracy and ROC AUC. One optional
addition, off unless asked for: a fixed standardisation of each feature in
front of the LSTM (``feature_stats`` of :func:`build_sequence_head`).

The model is split in two parts that can be built and used on their own:

* :func:`build_frame_encoder` - one face -> a 2048-number feature vector. Its
  ResNet50 is frozen (``trainable = False``), which in Keras also makes its
  BatchNormalization layers use their stored statistics, so the encoder is a
  fixed function of its input.
* :func:`build_sequence_head` - (T, 2048) features -> P(FAKE). These are the
  only trained weights.

:func:`build_resnet_lstm` joins them (sharing the same layer objects, hence the
same weights) into the end-to-end model. Because the encoder is fixed, training
the head on features computed once (:func:`encode_sequences`, cached on disk)
gives exactly the model that end-to-end training would, for a fraction of the
CPU time.

Only ``keras`` and ``keras.ops`` are used, so everything runs with
``KERAS_BACKEND=tensorflow`` (the default) and ``KERAS_BACKEND=torch``.
Importing this module does not import Keras: the backend is chosen by the
``KERAS_BACKEND`` environment variable when Keras is first imported, so a
notebook sets it first, and the functions here import Keras when called.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import config

RESNET50_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
# Keras' ImageNet ResNet50 was trained on "caffe"-style inputs: BGR channel
# order, 0-255 values, the ImageNet mean colour subtracted (no scaling).
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
FEATURE_DIM = 2048
LAST_CONV_LAYER = "conv5_block3_out"  # ResNet50's last block output (for Grad-CAM)
ENCODER_NAME = "frame_encoder"
TIME_DISTRIBUTED_NAME = "time_distributed_resnet50"
HEAD_LAYER_NAMES = ("lstm", "leaky_relu", "dropout", "dense", "fake_probability")
STANDARDIZATION_NAME = "feature_standardization"  # optional, before the LSTM (not in the report)

_LAZY_CLASSES = ("ImageNetPreprocess",)


# --------------------------------------------------------------------------- #
# Backend and the one custom layer (defined when first needed)
# --------------------------------------------------------------------------- #


def keras_backend() -> str:
    """The Keras backend in use, or the one Keras will use when imported."""
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _define_classes() -> None:
    if "ImageNetPreprocess" in globals():
        return
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="deepfake_course")
    class ImageNetPreprocess(keras.layers.Layer):
        """Faces in [0, 1] RGB -> the input Keras' ImageNet ResNet50 expects.

        Same arithmetic as ``keras.applications.resnet50.preprocess_input`` on
        0-255 images: scale to 0-255, RGB -> BGR, subtract the ImageNet mean.
        Being a layer, it is saved with the model, so whoever loads the model
        feeds it faces in [0, 1] as the loader makes them.
        """

        def call(self, inputs):
            x = ops.cast(inputs, self.compute_dtype) * 255.0
            x = ops.flip(x, axis=-1)
            mean = ops.convert_to_tensor(np.asarray(IMAGENET_BGR_MEAN, dtype="float32"), dtype=x.dtype)
            return ops.subtract(x, mean)

        def compute_output_shape(self, input_shape):
            return input_shape

    globals()["ImageNetPreprocess"] = ImageNetPreprocess


def __getattr__(name):  # PEP 562: the Keras classes are created on first access
    if name in _LAZY_CLASSES:
        _define_classes()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- #
# Builders
# --------------------------------------------------------------------------- #


def _resnet50(image_size: int, pretrained: bool):
    import keras

    if not pretrained:
        return keras.applications.ResNet50(include_top=False, weights=None,
                                           input_shape=(image_size, image_size, 3))
    try:
        return keras.applications.ResNet50(include_top=False, weights="imagenet",
                                           input_shape=(image_size, image_size, 3))
    except Exception as error:  # Keras raises a bare Exception when the download fails
        target = config.keras_cache_dir() / RESNET50_WEIGHTS_FILE
        raise RuntimeError(
            "Could not load the ImageNet weights of ResNet50 "
            f"({type(error).__name__}: {error}). Either set PRETRAINED = False in the parameters cell "
            f"(random weights, the pipeline still runs), or put {RESNET50_WEIGHTS_FILE} (94 MB, from "
            "https://storage.googleapis.com/tensorflow/keras-applications/resnet/) into "
            f"{target.parent} (KERAS_HOME/models) and run again."
        ) from error


def build_frame_encoder(image_size: int = 224, pretrained: bool = True, name: str = ENCODER_NAME):
    """One face (H, W, 3) in [0, 1] -> 2048 features: ImageNet preprocessing, frozen ResNet50, GAP.

    ``pretrained=True`` loads Keras' ImageNet weights (downloaded once into
    ``~/.keras/models``; a clear error when that is impossible), ``False``
    leaves them random (for tests and offline runs).
    """
    import keras

    _define_classes()
    backbone = _resnet50(int(image_size), bool(pretrained))
    backbone.trainable = False  # frozen: no weight updates, BatchNorm in inference mode
    face = keras.Input((image_size, image_size, 3), name="face")
    x = globals()["ImageNetPreprocess"](name="resnet50_preprocess")(face)
    x = backbone(x)
    features = keras.layers.GlobalAveragePooling2D(name="global_average_pooling")(x)
    return keras.Model(face, features, name=name)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over every frame of ``features`` (N, T, D) or a list of such arrays."""
    arrays = features if isinstance(features, (list, tuple)) else [features]
    flat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1, np.shape(a)[-1]) for a in arrays])
    return flat.mean(axis=0).astype(np.float32), flat.var(axis=0).astype(np.float32)


def feature_standardization(feature_stats, feature_dim: int = FEATURE_DIM):
    """A fixed (non-trainable) layer that standardises each feature: ``(x - mean) / sqrt(variance)``.

    ``feature_stats=(mean, variance)``, one value per feature, e.g. from
    :func:`feature_statistics` over the training features.
    """
    from keras import layers

    mean, variance = (np.asarray(v, dtype=np.float32).reshape(-1) for v in feature_stats)
    if mean.shape != (feature_dim,) or variance.shape != (feature_dim,):
        raise ValueError(f"feature_stats must hold {feature_dim} means and variances.")
    return layers.Normalization(axis=-1, mean=mean, variance=np.maximum(variance, 1e-6),
                                name=STANDARDIZATION_NAME)


def build_sequence_head(feature_dim: int = FEATURE_DIM, lstm_units: int = 2048, dense_units: int = 2048,
                        dropout: float = 0.4, seq_len: int | None = None, feature_stats=None,
                        name: str = "sequence_head"):
    """(T, feature_dim) frame features -> P(FAKE): LSTM -> LeakyReLU -> Dropout -> Dense(relu) -> Dense(sigmoid).

    Notebook 03 shows this definition (a test keeps the two equal).

    ``seq_len=None`` accepts sequences of any length (the LSTM does not care),
    which lets a notebook ask the head what it thinks after the first t frames.

    ``feature_stats=(mean, variance)`` (see :func:`feature_statistics`, from
    the training features) puts a fixed, non-trainable standardisation of each
    feature in front of the LSTM (:func:`feature_standardization`). The report
    has no such layer; without it the LSTM sees features that share a large
    common offset and barely vary around it, and may not learn at all
    (notebook 03 measures this).
    """
    import keras
    from keras import layers

    features = keras.Input((seq_len, feature_dim), name="frame_features")
    x = features
    if feature_stats is not None:
        x = feature_standardization(feature_stats, feature_dim)(x)
    x = layers.LSTM(lstm_units, name="lstm")(x)
    x = layers.LeakyReLU(name="leaky_relu")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    probability = layers.Dense(1, activation="sigmoid", name="fake_probability")(x)
    return keras.Model(features, probability, name=name)


def build_resnet_lstm(seq_len: int = 20, image_size: int = 224, pretrained: bool = True,
                      lstm_units: int = 2048, dense_units: int = 2048, dropout: float = 0.4,
                      encoder=None, head=None, name: str = "resnet50_lstm"):
    """The report's end-to-end model: (T, H, W, 3) faces in [0, 1] -> P(FAKE) of the video.

    ``TimeDistributed`` applies the per-frame encoder to every frame of the
    sequence; the head's layers follow. Pass an existing ``encoder`` and/or
    ``head`` to reuse their layers (and so their weights): e.g. a head trained
    on cached features becomes part of the full model without copying
    anything. Notebook 03 shows this definition.
    """
    import keras

    if encoder is None:
        encoder = build_frame_encoder(image_size, pretrained)
    if head is None:
        head = build_sequence_head(encoder.output_shape[-1], lstm_units, dense_units, dropout)
    frames = keras.Input((seq_len, image_size, image_size, 3), name="face_sequence")
    x = keras.layers.TimeDistributed(encoder, name=TIME_DISTRIBUTED_NAME)(frames)
    for layer in head.layers[1:]:  # the same layer objects: weights are shared with `head`
        x = layer(x)
    return keras.Model(frames, x, name=name)


def compile_model(model, learning_rate: float = 1e-3):
    """Adam, binary cross-entropy, accuracy and ROC AUC (the report's compile call). Shown in notebook 03."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")])
    return model


def count_parameters(model) -> dict:
    """Trainable, frozen (``non_trainable``) and total weight counts, as ``models_torch.count_parameters``."""
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    frozen = int(sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}


def frame_encoder_of(model):
    """The per-frame encoder inside an end-to-end model from :func:`build_resnet_lstm`."""
    return model.get_layer(TIME_DISTRIBUTED_NAME).layer


# --------------------------------------------------------------------------- #
# Cached features
# --------------------------------------------------------------------------- #


def weights_fingerprint(model) -> str:
    """A short hash of all of a model's weights (identifies a frozen encoder)."""
    from keras import ops

    digest = hashlib.sha1()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:16]


def feature_cache_dir() -> Path:
    path = config.data_dir() / "features" / "resnet50_lstm"
    path.mkdir(parents=True, exist_ok=True)
    return path


# Faces per call of the frozen encoder in encode_sequences: 8 keeps the full profile's step near
# 1.1 GiB (tools/memory_estimate.py measured 11.6 GiB for 80 faces in one call, a CPU estimate).
ENCODE_FACES_PER_CALL = 8


def encode_sequences(encoder, dataset, cache_dir: Path | str | None = None, desc: str = "encoding faces",
                     verbose: bool = True) -> dict:
    """Run the frozen encoder over every face sequence of ``dataset`` once.

    ``dataset`` is a :class:`helpers.datasets_keras.FaceSequenceDataset`
    (unshuffled). Returns ``{"features": (N, T, D) float32, "labels": (N,),
    "videos": [...], "cached": bool, "path": Path|None}``. With ``cache_dir``
    the result is stored as ``.npz`` under a name that hashes the encoder's
    weights and the dataset's content, image size, normalisation and
    augmentation seed, so a changed input or encoder never reuses stale features.
    """
    from tqdm.auto import tqdm

    if getattr(dataset, "shuffle", False):
        raise ValueError("Encode an unshuffled dataset (shuffle=False), so features line up with videos.")
    path = None
    if cache_dir is not None:
        key = {"encoder": weights_fingerprint(encoder), "data": dataset.signature()}
        name = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        path = Path(cache_dir) / f"{name}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as stored:
                out = {"features": stored["features"], "labels": stored["labels"],
                       "videos": [str(v) for v in stored["videos"]]}
            if out["videos"] == list(dataset.videos):
                if verbose:
                    print(f"{desc}: reusing cached features {path.name} {out['features'].shape}")
                return {**out, "cached": True, "path": path}
    chunks = []
    for index in tqdm(range(len(dataset)), desc=desc, disable=not verbose):
        frames, _ = dataset[index]
        b, t = frames.shape[:2]
        flat = frames.reshape((b * t,) + frames.shape[2:])
        # a few faces per encoder call: ResNet50 at 224 px holds about 140 MiB of activations per face
        features = np.concatenate([predict_batch(encoder, flat[i:i + ENCODE_FACES_PER_CALL])
                                   for i in range(0, len(flat), ENCODE_FACES_PER_CALL)]).astype(np.float32)
        chunks.append(features.reshape(b, t, -1))
    out = {"features": np.concatenate(chunks), "labels": np.asarray(dataset.labels, dtype=np.float32),
           "videos": list(dataset.videos)}
    if path is not None:
        from .safe_io import atomic_path

        with atomic_path(path, suffix=".partial.npz") as tmp:  # np.savez wants the .npz ending
            np.savez(tmp, features=out["features"], labels=out["labels"], videos=np.asarray(out["videos"]))
    return {**out, "cached": False, "path": path}


# --------------------------------------------------------------------------- #
# Training, prediction, saving
# --------------------------------------------------------------------------- #


def training_callbacks(checkpoint_path, monitor: str = "val_loss", patience: int | None = 3) -> list:
    """A best-epoch checkpoint and (with ``patience``) early stopping, both watching ``monitor``.

    ``ModelCheckpoint`` writes the weights whenever ``monitor`` improves (lowest
    loss, or highest accuracy/AUC); ``EarlyStopping`` ends training after
    ``patience`` epochs without improvement (``None`` or 0: never early).
    Shown in notebook 03.
    """
    import keras

    mode = "min" if "loss" in monitor else "max"
    callbacks = [keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor=monitor, mode=mode,
                                                 save_best_only=True, save_weights_only=True)]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=int(patience)))
    return callbacks


def fresh_checkpoint_path(checkpoint_path) -> Path:
    """Check the name Keras 3 wants (``*.weights.h5``), make its folder, remove an earlier run's file.

    The file is this notebook's own best-epoch checkpoint: a stale one from an
    earlier run must not be reloaded as this run's best.
    """
    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.name.endswith(".weights.h5"):
        raise ValueError("Keras 3 wants a weights checkpoint named *.weights.h5.")
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    if checkpoint_path.exists():
        checkpoint_path.unlink()
    return checkpoint_path


def restore_best_epoch(model, history, checkpoint_path, monitor: str = "val_loss",
                       epochs_requested: int | None = None) -> dict:
    """After ``model.fit``: load the best checkpoint back and summarise the run.

    Returns the per-epoch history (plain lists), how many epochs ran, whether
    early stopping ended the run, and which epoch (1-based) was best.
    """
    checkpoint_path = Path(checkpoint_path)
    curves = {k: [float(v) for v in values] for k, values in history.history.items()}
    mode = "min" if "loss" in monitor else "max"
    watched = np.asarray(curves.get(monitor, []), dtype=float)
    best = None
    if np.isfinite(watched).any():
        masked = np.where(np.isfinite(watched), watched, np.inf if mode == "min" else -np.inf)
        best = int(np.argmin(masked) if mode == "min" else np.argmax(masked))
    if checkpoint_path.exists():
        model.load_weights(str(checkpoint_path))
    epochs_run = len(curves.get("loss", []))
    requested = epochs_run if epochs_requested is None else int(epochs_requested)
    return {"history": curves, "epochs_run": epochs_run, "epochs_requested": requested,
            "stopped_early": epochs_run < requested, "monitor": monitor,
            "best_epoch": None if best is None else best + 1,
            "best_checkpoint": str(checkpoint_path) if checkpoint_path.exists() else None}


def clean_log_loss(model, data) -> float:
    """Binary cross-entropy of ``model`` on a labelled dataset, in inference mode (no dropout).

    Measured on the clean training data before and after training, it shows
    whether training lowered the loss: only the weights differ between the two.
    """
    import keras

    labels = np.asarray(data.labels, dtype="float32").reshape(-1, 1)
    probs = predict_probs(model, data).astype("float32").reshape(-1, 1)
    # the loss compile_model trains with (probabilities clipped to [1e-7, 1 - 1e-7], as helpers.evaluation does)
    return float(np.mean(keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(labels, probs))))


def fit(model, train_data, val_data, epochs: int, checkpoint_path, patience: int | None = 3,
        monitor: str = "val_loss", verbose: int = 2, clean_data=None) -> dict:
    """``model.fit`` with a best-epoch checkpoint and early stopping, then the best weights loaded back.

    See :func:`training_callbacks` and :func:`restore_best_epoch` (what this
    returns). With ``clean_data`` (the training videos, unaugmented) the result
    also holds ``clean_loss_before`` and ``clean_loss_after``: the loss on
    them before training and with the last epoch's weights (before the best
    epoch's come back), the evidence ``evaluation.learning_check`` reads.
    Shown in notebook 03.
    """
    checkpoint_path = fresh_checkpoint_path(checkpoint_path)
    callbacks = training_callbacks(checkpoint_path, monitor, patience)
    before = None if clean_data is None else clean_log_loss(model, clean_data)
    history = model.fit(train_data, validation_data=val_data, epochs=int(epochs), callbacks=callbacks,
                        verbose=verbose)
    after = None if clean_data is None else clean_log_loss(model, clean_data)
    fitted = restore_best_epoch(model, history, checkpoint_path, monitor, int(epochs))
    return {**fitted, "clean_loss_before": before, "clean_loss_after": after}


def predict_batch(model, x) -> np.ndarray:
    """The model's output for one batch of inputs, as a NumPy array (inference mode).

    On TensorFlow this is a plain eager call: ``model.predict`` would first
    compile a graph of the whole network (seconds for ResNet50), and again
    for every new batch shape, which only pays off over many batches. On
    PyTorch, ``predict_on_batch`` (which runs without gradient tracking).
    """
    from keras import ops

    if keras_backend() == "tensorflow":
        return np.asarray(ops.convert_to_numpy(model(x, training=False)))
    return np.asarray(model.predict_on_batch(x))


def predict_probs(model, data) -> np.ndarray:
    """P(FAKE) for every sample of a dataset (its order), as a 1-D array."""
    return np.asarray(model.predict(data, verbose=0), dtype=np.float64).ravel()


def default_model_path(backend: str | None = None) -> Path:
    """Where notebook 03 saves its trained model: ``models_dir()/resnet_lstm_<backend>.keras``."""
    return config.models_dir() / f"resnet_lstm_{backend or keras_backend()}.keras"


def save_model(model, path: Path | str | None = None) -> Path:
    path = Path(path) if path is not None else default_model_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path


def load_resnet_lstm(path: Path | str | None = None):
    """Load a model saved by :func:`save_model` (registers the custom layer first).

    Without ``path``, the current backend's default file. The model comes
    back uncompiled (ready for prediction and Grad-CAM; call
    :func:`compile_model` to train it further), which also lets either
    backend read a file the other one wrote.
    """
    import keras

    path = Path(path) if path is not None else default_model_path()
    if not path.exists():
        raise FileNotFoundError(f"No trained ResNet50+LSTM model at {path}: run notebooks/03_keras_resnet_lstm.ipynb "
                                "first (or pass the path of a .keras file).")
    _define_classes()
    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as error:
        raise ValueError(f"{path} could not be read as a Keras model ({type(error).__name__}: {error}). "
                         "Re-run notebook 03 to write it again.") from error
