import pytest

from helpers import config


DEFAULTS = {"smoke": {"epochs": 1, "batch_size": 4}, "standard": {"epochs": 5, "batch_size": 16},
            "full": {"epochs": 20, "batch_size": 32}}


def test_profile_defaults_used_when_override_is_none():
    settings = config.resolve_settings(DEFAULTS, "standard", verbose=False, EPOCHS=None, BATCH_SIZE=None)
    assert (settings.epochs, settings.batch_size, settings.profile) == (5, 16, "standard")


def test_explicit_override_wins():
    settings = config.resolve_settings(DEFAULTS, "full", verbose=False, EPOCHS=3)
    assert settings.epochs == 3 and settings.batch_size == 32


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="Unknown setting 'EPOCS'"):
        config.resolve_settings(DEFAULTS, "smoke", verbose=False, EPOCS=3)


def test_unknown_profile_is_an_error():
    with pytest.raises(ValueError, match="Unknown profile"):
        config.resolve_settings(DEFAULTS, "huge", verbose=False)


def test_settings_are_printed(capsys):
    config.resolve_settings(DEFAULTS, "smoke")
    assert "epochs" in capsys.readouterr().out


def test_directories_follow_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("DEEPFAKE_RESULTS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("DEEPFAKE_FIGURES_DIR", str(tmp_path / "f"))
    assert config.data_dir() == tmp_path / "d" and (tmp_path / "d").is_dir()
    assert config.models_dir() == tmp_path / "d" / "models"
    assert config.results_dir() == tmp_path / "r"
    assert config.figures_dir() == tmp_path / "f"


def test_weight_caches_follow_torch_and_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    assert config.torch_cache_dir() == tmp_path / "t" / "checkpoints"
    assert config.keras_cache_dir() == tmp_path / "k" / "models"
