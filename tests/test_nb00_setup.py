import pytest

from conftest import load_result, run_notebook


@pytest.mark.notebook
def test_setup_notebook_reports_environment():
    run_notebook("00_setup")
    result = load_result("00_setup")
    assert result["missing_packages"] == []
    for package in ("torch", "facenet-pytorch", "tensorflow", "keras", "albumentations"):
        assert result["versions"][package], package
    assert result["versions"]["facenet-pytorch"] == "2.5.3"
    assert result["device"]["device"] in ("cpu", "cuda")
    assert len(result["weights_cached"]) == 3
