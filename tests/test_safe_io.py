"""Unit tests of helpers/safe_io.py's all-or-nothing writes (the reading guards are tested in test_bad_inputs)."""
import json

import pytest

from helpers import safe_io


def test_atomic_path_replaces_the_file_only_when_the_block_finishes(tmp_path):
    target = tmp_path / "sub" / "data.json"
    with safe_io.atomic_path(target) as temporary:
        assert temporary != target and temporary.parent == target.parent
        temporary.write_text("new")
        assert not target.exists()  # nothing visible until the block is done
    assert target.read_text() == "new" and not list(target.parent.glob("*.partial"))
    with pytest.raises(RuntimeError):
        with safe_io.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "new", "a failed write leaves the old content"
    assert not list(target.parent.glob("*.partial")), "and no temporary file"


def test_atomic_path_keeps_the_extension_a_writer_needs(tmp_path):
    with safe_io.atomic_path(tmp_path / "f.npz", suffix=".partial.npz") as temporary:
        assert temporary.name.endswith(".npz")
        temporary.write_bytes(b"x")
    assert (tmp_path / "f.npz").read_bytes() == b"x"


def test_atomic_write_json_and_text(tmp_path):
    path = safe_io.atomic_write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]}, indent=None)
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1} and path.read_text().startswith('{"a"')
    assert safe_io.atomic_write_text(tmp_path / "t.txt", "é").read_text(encoding="utf-8") == "é"
