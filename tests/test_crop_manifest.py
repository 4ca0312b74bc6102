"""The crop manifest's readers: what a missing manifest says, and which rows have a crop."""
import pandas as pd
import pytest

from helpers import crop_manifest


def test_missing_manifest_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="extract_faces"):
        crop_manifest.load_manifest(tmp_path / "manifest.parquet")

def test_crop_rows_keep_faces_and_name_missing_columns():
    table = pd.DataFrame({"video": ["a", "a", "b"], "crop_path": ["x.png", None, "y.png"],
                          "status": ["ok", "no_face", "unreadable"], "target": [0, 0, 1]})
    assert crop_manifest.crop_rows(table, ["video", "target"])["crop_path"].tolist() == ["x.png"]
    assert len(crop_manifest.crop_rows(table.drop(columns=["status"]))) == 2
    with pytest.raises(ValueError, match=r"\['split'\].*extract_faces"):
        crop_manifest.crop_rows(table, ["video", "split"])
