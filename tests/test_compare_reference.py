"""tools/compare_reference.py: a run within tolerance passes, one number outside (or missing) fails."""
from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("compare_reference", REPO_ROOT / "tools" / "compare_reference.py")
compare_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_reference)

CHECKS = [("01_data", "n_videos", 0, "size"), ("04_inception_resnet", "test.video.roc_auc", 0.1, "auc"),
          ("06_tta_gradcam", "tta.change.meso4.video log_loss.change", 0.05, "tta")]


def write_run(folder, n_videos=141, auc=0.8, change=-0.02, profile="standard"):
    folder.mkdir(parents=True, exist_ok=True)
    runs = {"01_data": {"profile": profile, "n_videos": n_videos},
            "04_inception_resnet": {"test": {"video": {"roc_auc": auc}}},
            "06_tta_gradcam": {"tta": {"change": {"meso4": {"video log_loss": {"change": change}}}}}}
    for name, result in runs.items():
        (folder / f"{name}.json").write_text(json.dumps(result))
    return folder


def test_reference_of_a_run_passes_against_itself_and_within_tolerance(tmp_path):
    reference = compare_reference.make_reference(write_run(tmp_path / "ref"), CHECKS)
    assert reference["profile"] == "standard" and len(reference["checks"]) == 3
    assert all(row["ok"] for row in compare_reference.compare(reference, tmp_path / "ref"))
    near = write_run(tmp_path / "near", auc=0.75, change=0.02)
    assert all(row["ok"] for row in compare_reference.compare(reference, near))


def test_a_number_outside_its_tolerance_or_missing_fails(tmp_path):
    reference = compare_reference.make_reference(write_run(tmp_path / "ref"), CHECKS)
    chance = write_run(tmp_path / "chance", auc=0.5)  # a model that learned nothing
    rows = {row["path"]: row for row in compare_reference.compare(reference, chance)}
    assert not rows["test.video.roc_auc"]["ok"] and rows["n_videos"]["ok"]
    other_size = write_run(tmp_path / "size", n_videos=140)
    assert not {r["path"]: r for r in compare_reference.compare(reference, other_size)}["n_videos"]["ok"]
    (chance / "06_tta_gradcam.json").write_text(json.dumps({"tta": {}}))
    rows = {row["path"]: row for row in compare_reference.compare(reference, chance)}
    assert "missing key 'change'" in rows["tta.change.meso4.video log_loss.change"]["problem"]
    (chance / "01_data.json").unlink()
    assert "run the course first" in compare_reference.compare(reference, chance)[0]["problem"]


def test_command_line_writes_only_a_standard_reference_and_exits_1_when_out(tmp_path, capsys):
    reference = tmp_path / "reference.json"
    smoke = write_run(tmp_path / "smoke", profile="smoke")
    assert compare_reference.main(["--results", str(smoke), "--reference", str(reference), "--write"]) == 2
    run = write_run(tmp_path / "run")
    assert compare_reference.main(["--results", str(run), "--reference", str(reference), "--write"]) == 0
    assert compare_reference.main(["--results", str(run), "--reference", str(reference)]) == 0
    assert compare_reference.main(["--results", str(write_run(tmp_path / "bad", auc=0.4)),
                                   "--reference", str(reference)]) == 1
    assert "OUT" in capsys.readouterr().out


@pytest.mark.parametrize("path", [check[1] for check in compare_reference.CHECKS])
def test_the_committed_reference_holds_the_tools_checks(path):
    committed = json.loads(compare_reference.DEFAULT_REFERENCE.read_text())
    assert committed["profile"] == "standard"
    assert path in {check["path"] for check in committed["checks"]}
