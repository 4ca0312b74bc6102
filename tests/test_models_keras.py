"""ResNet50 + LSTM builders, feature caching, training and saving (random weights, tiny sizes).

Runs on whatever backend KERAS_BACKEND names (TensorFlow by default); the
notebook test runs the whole pipeline on both backends.
"""
import numpy as np
import pytest

from helpers import datasets_keras, models_keras  # the helpers package first: see helpers/__init__.py
from test_datasets_keras import make_sequence_manifest

keras = pytest.importorskip("keras")

SEQ, SIZE, UNITS = 3, 32, 8


@pytest.fixture(scope="module")
def parts():
    keras.utils.set_random_seed(0)
    encoder = models_keras.build_frame_encoder(SIZE, pretrained=False)
    head = models_keras.build_sequence_head(lstm_units=UNITS, dense_units=UNITS + 4, dropout=0.4)
    model = models_keras.build_resnet_lstm(SEQ, SIZE, encoder=encoder, head=head)
    models_keras.compile_model(model)
    return encoder, head, model


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).random((2, SEQ, SIZE, SIZE, 3)).astype("float32")


def test_report_architecture_in_order_with_the_asked_widths(parts, frames):
    _, _, model = parts
    names = [layer.name for layer in model.layers]
    assert names == ["face_sequence", "time_distributed_resnet50", "lstm", "leaky_relu", "dropout", "dense",
                     "fake_probability"]
    assert tuple(names[2:]) == models_keras.HEAD_LAYER_NAMES
    assert isinstance(model.get_layer("time_distributed_resnet50"), keras.layers.TimeDistributed)
    assert model.get_layer("lstm").units == UNITS
    assert model.get_layer("dropout").rate == pytest.approx(0.4)
    assert model.get_layer("dense").units == UNITS + 4
    assert model.get_layer("dense").activation.__name__ == "relu"
    assert model.get_layer("fake_probability").units == 1
    assert model.get_layer("fake_probability").activation.__name__ == "sigmoid"
    assert model.input_shape == (None, SEQ, SIZE, SIZE, 3)
    assert model.get_layer("time_distributed_resnet50").output.shape[-1] == 2048
    assert np.asarray(model.predict(frames, verbose=0)).shape == (2, 1)
    assert model.loss == "binary_crossentropy"
    assert isinstance(model.optimizer, keras.optimizers.Adam)


def test_backbone_is_frozen_and_only_the_head_trains(parts, frames):
    encoder, head, model = parts
    backbone = next(layer for layer in encoder.layers if isinstance(layer, keras.Model))
    assert backbone.name == "resnet50" and not backbone.trainable
    assert not any(w.trainable for w in backbone.weights)
    counts = models_keras.count_parameters(model)
    lstm = 4 * (UNITS * (2048 + UNITS) + UNITS)
    dense = UNITS * (UNITS + 4) + UNITS + 4 + (UNITS + 4) + 1
    assert counts["trainable"] == lstm + dense == models_keras.count_parameters(head)["trainable"]
    assert counts["non_trainable"] == models_keras.count_parameters(encoder)["total"] > 23_000_000
    # frozen BatchNorm uses its stored statistics even in training mode: the encoder is a fixed function
    x = frames[0]
    a = keras.ops.convert_to_numpy(encoder(x, training=True))
    b = keras.ops.convert_to_numpy(encoder(x, training=False))
    assert np.allclose(a, b, atol=1e-5)


def test_default_head_has_the_reports_widths():
    head = models_keras.build_sequence_head()
    assert head.get_layer("lstm").units == 2048 and head.get_layer("dense").units == 2048
    assert head.input_shape == (None, None, 2048)
    assert models_keras.count_parameters(head)["trainable"] == 4 * (2048 * 4096 + 2048) + 2048 * 2048 + 2048 + 2049


def test_head_on_cached_features_equals_the_end_to_end_model(parts, frames):
    encoder, head, model = parts
    flat = frames.reshape((-1, SIZE, SIZE, 3))
    features = np.asarray(encoder.predict(flat, verbose=0)).reshape(2, SEQ, -1)
    assert np.allclose(head.predict(features, verbose=0), model.predict(frames, verbose=0), atol=1e-5)
    assert models_keras.frame_encoder_of(model) is encoder


def test_preprocessing_layer_matches_keras_preprocess_input(parts):
    encoder, _, _ = parts
    faces = np.random.default_rng(1).random((2, SIZE, SIZE, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(encoder.get_layer("resnet50_preprocess")(faces))
    theirs = keras.applications.resnet50.preprocess_input(faces * 255.0)
    assert np.allclose(ours, keras.ops.convert_to_numpy(theirs), atol=1e-3)


def test_optional_feature_standardization_is_fixed_and_saved(frames, tmp_path):
    rng = np.random.default_rng(3)
    train_features = [rng.normal(2.8, 0.3, (5, SEQ, 2048)).astype("float32") for _ in range(2)]
    mean, variance = models_keras.feature_statistics(train_features)
    assert mean.shape == variance.shape == (2048,)
    assert np.allclose(mean, np.concatenate(train_features).reshape(-1, 2048).mean(0), atol=1e-5)
    keras.utils.set_random_seed(0)
    head = models_keras.build_sequence_head(lstm_units=UNITS, dense_units=UNITS, feature_stats=(mean, variance))
    plain = models_keras.build_sequence_head(lstm_units=UNITS, dense_units=UNITS)
    layer = head.get_layer(models_keras.STANDARDIZATION_NAME)
    assert head.layers[1] is layer and not layer.trainable_weights
    assert models_keras.count_parameters(head)["trainable"] == models_keras.count_parameters(plain)["trainable"]
    x = train_features[0]
    standardized = keras.ops.convert_to_numpy(layer(x))
    assert np.allclose(standardized, (x - mean) / np.sqrt(variance), atol=1e-3)
    assert abs(float(standardized.mean())) < 0.5 and 0.5 < float(standardized.std()) < 1.5
    with pytest.raises(ValueError, match="2048"):
        models_keras.build_sequence_head(feature_stats=(mean[:10], variance[:10]))
    # the layer travels with the end-to-end model, through save and load
    model = models_keras.build_resnet_lstm(SEQ, SIZE, pretrained=False, head=head)
    assert [layer.name for layer in model.layers][2] == models_keras.STANDARDIZATION_NAME
    loaded = models_keras.load_resnet_lstm(models_keras.save_model(model, tmp_path / "standardized.keras"))
    assert np.allclose(loaded.predict(frames, verbose=0), model.predict(frames, verbose=0), atol=1e-6)
    assert models_keras.STANDARDIZATION_NAME in [layer.name for layer in loaded.layers]


def test_encode_sequences_caches_by_encoder_and_data(parts, tmp_path):
    encoder, _, _ = parts
    manifest = make_sequence_manifest(tmp_path / "crops", videos_per_class=1, faces_per_video=3)
    ds = datasets_keras.FaceSequenceDataset(manifest[manifest["split"] == "test"], SEQ, SIZE, batch_size=1)
    first = models_keras.encode_sequences(encoder, ds, cache_dir=tmp_path / "cache", verbose=False)
    assert first["features"].shape == (2, SEQ, 2048) and not first["cached"] and first["path"].exists()
    assert first["labels"].tolist() == ds.labels.tolist() and first["videos"] == ds.videos
    again = models_keras.encode_sequences(encoder, ds, cache_dir=tmp_path / "cache", verbose=False)
    assert again["cached"] and np.array_equal(again["features"], first["features"])
    augmented = datasets_keras.FaceSequenceDataset(manifest[manifest["split"] == "test"], SEQ, SIZE,
                                                   augment=True, seed=5)
    other = models_keras.encode_sequences(encoder, augmented, cache_dir=tmp_path / "cache", verbose=False)
    assert not other["cached"] and other["path"] != first["path"]
    shuffled = datasets_keras.FaceSequenceDataset(manifest[manifest["split"] == "test"], SEQ, SIZE, shuffle=True)
    with pytest.raises(ValueError, match="unshuffled"):
        models_keras.encode_sequences(encoder, shuffled)


def test_fit_keeps_the_best_checkpoint_and_stops_early(tmp_path):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 6)
    features = rng.normal(size=(12, SEQ, 16)).astype("float32") + labels[:, None, None]
    train = datasets_keras.FeatureSequenceDataset(features, labels, batch_size=4, shuffle=True)
    val = datasets_keras.FeatureSequenceDataset(features[:6], labels[:6], batch_size=6)
    head = models_keras.build_sequence_head(16, lstm_units=UNITS, dense_units=UNITS)
    models_keras.compile_model(head, learning_rate=1e-2)
    clean = datasets_keras.FeatureSequenceDataset(features, labels)
    out = models_keras.fit(head, train, val, epochs=3, checkpoint_path=tmp_path / "best.weights.h5",
                           patience=None, verbose=0, clean_data=clean)
    assert out["epochs_run"] == 3 and not out["stopped_early"]
    assert out["clean_loss_after"] < out["clean_loss_before"]  # it learned the offset between the classes
    assert set(out["history"]) >= {"loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc"}
    assert all(np.isfinite(out["history"]["loss"]))
    assert out["best_epoch"] == int(np.argmin(out["history"]["val_loss"])) + 1
    assert out["best_checkpoint"] and (tmp_path / "best.weights.h5").exists()
    # a learning rate of 0 never improves the validation loss: stops after `patience` more epochs
    frozen = models_keras.build_sequence_head(16, lstm_units=UNITS, dense_units=UNITS)
    models_keras.compile_model(frozen, learning_rate=0.0)
    out = models_keras.fit(frozen, train, val, epochs=10, checkpoint_path=tmp_path / "lr0.weights.h5",
                           patience=2, verbose=0, clean_data=clean)
    assert out["epochs_run"] == 3 and out["stopped_early"] and out["best_epoch"] == 1
    assert out["clean_loss_after"] == out["clean_loss_before"]  # nothing moved: the learning check's loss test fails
    assert models_keras.clean_log_loss(frozen, clean) == out["clean_loss_before"]
    from helpers import evaluation  # the same log loss as the course's metrics report
    assert out["clean_loss_before"] == pytest.approx(
        evaluation.binary_metrics(labels, models_keras.predict_probs(frozen, clean))["log_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="weights.h5"):
        models_keras.fit(frozen, train, val, epochs=1, checkpoint_path=tmp_path / "x.h5")


def test_end_to_end_training_on_faces_leaves_the_backbone_untouched(tmp_path):
    manifest = make_sequence_manifest(tmp_path / "crops", videos_per_class=1, faces_per_video=3)
    data = datasets_keras.sequence_datasets(manifest, seq_len=2, image_size=SIZE, batch_size=2)
    keras.utils.set_random_seed(2)
    model = models_keras.build_resnet_lstm(2, SIZE, pretrained=False, lstm_units=4, dense_units=4)
    models_keras.compile_model(model, 1e-2)
    encoder = models_keras.frame_encoder_of(model)
    frozen_before = [keras.ops.convert_to_numpy(w).copy() for w in encoder.weights]  # incl. BatchNorm statistics
    head_before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    out = models_keras.fit(model, data["train"], data["val"], epochs=1, checkpoint_path=tmp_path / "e2e.weights.h5",
                           patience=None, verbose=0)
    assert out["epochs_run"] == 1 and np.isfinite(out["history"]["loss"][0])
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(w)) for a, w in zip(frozen_before, encoder.weights))
    assert not all(np.array_equal(a, keras.ops.convert_to_numpy(w))
                   for a, w in zip(head_before, model.trainable_weights))
    probs = models_keras.predict_probs(model, data["test"])
    assert probs.shape == (len(data["test"].videos),)


def test_save_and_load_round_trip_and_clear_errors(parts, frames, tmp_path):
    _, _, model = parts
    path = models_keras.save_model(model, tmp_path / "resnet_lstm_test.keras")
    loaded = models_keras.load_resnet_lstm(path)
    assert np.allclose(loaded.predict(frames, verbose=0), model.predict(frames, verbose=0), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="03_keras_resnet_lstm"):
        models_keras.load_resnet_lstm(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="notebook 03"):
        models_keras.load_resnet_lstm(bad)
    assert bad.read_bytes() == b"not a zip"  # the user's file is left alone
    assert models_keras.default_model_path("torch").name == "resnet_lstm_torch.keras"


def test_pretrained_weights_offline_give_a_clear_message(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(RuntimeError, match="PRETRAINED = False") as info:
        models_keras.build_frame_encoder(SIZE, pretrained=True)
    assert models_keras.RESNET50_WEIGHTS_FILE in str(info.value)


def test_training_callbacks_watch_the_asked_number(tmp_path):
    loss_watch = models_keras.training_callbacks(tmp_path / "a.weights.h5", monitor="val_loss", patience=2)
    checkpoint, stopping = loss_watch
    assert isinstance(checkpoint, keras.callbacks.ModelCheckpoint) and checkpoint.save_best_only
    assert isinstance(stopping, keras.callbacks.EarlyStopping) and stopping.patience == 2
    assert checkpoint.monitor == stopping.monitor == "val_loss"
    assert checkpoint.mode == stopping.mode == "min"  # lower is better for a loss
    auc_watch = models_keras.training_callbacks(tmp_path / "b.weights.h5", monitor="val_auc", patience=None)
    assert len(auc_watch) == 1 and auc_watch[0].mode == "max"  # higher is better for AUC


def test_fresh_checkpoint_path_removes_only_the_runs_own_file(tmp_path):
    stale = tmp_path / "models" / "best.weights.h5"
    stale.parent.mkdir()
    stale.write_bytes(b"an earlier run's best epoch")
    neighbour = stale.parent / "other.weights.h5"
    neighbour.write_bytes(b"keep me")
    assert models_keras.fresh_checkpoint_path(stale) == stale and not stale.exists() and neighbour.exists()
    assert models_keras.fresh_checkpoint_path(tmp_path / "new" / "x.weights.h5").parent.is_dir()
    with pytest.raises(ValueError, match="weights.h5"):
        models_keras.fresh_checkpoint_path(tmp_path / "x.h5")


def test_restore_best_epoch_loads_the_checkpoint_and_reports_the_best_epoch(tmp_path):
    keras.utils.set_random_seed(0)
    head = models_keras.build_sequence_head(8, lstm_units=4, dense_units=4)
    saved = tmp_path / "best.weights.h5"
    head.save_weights(str(saved))
    best_weights = [w.copy() for w in head.get_weights()]
    head.set_weights([w + 1.0 for w in best_weights])  # training went on after the best epoch

    class History:  # what model.fit returns
        history = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.69, 0.6, float("nan")]}

    out = models_keras.restore_best_epoch(head, History(), saved, monitor="val_loss", epochs_requested=5)
    assert out["best_epoch"] == 2 and out["epochs_run"] == 3 and out["stopped_early"]
    assert out["best_checkpoint"] == str(saved) and out["history"]["loss"] == [0.7, 0.5, 0.4]
    assert all(np.array_equal(a, b) for a, b in zip(head.get_weights(), best_weights))
    History.history = {"loss": [0.7, 0.6], "val_auc": [0.6, 0.8]}
    assert models_keras.restore_best_epoch(head, History(), tmp_path / "none.weights.h5",
                                           monitor="val_auc")["best_epoch"] == 2
