"""Reading the small files a user hands us (JSON, tokens) and writing ours, without surprises.

A file name in a settings cell can point at anything: a folder, a named pipe
(reading one waits for a writer that never comes), a 10 GB log, a file saved
by Windows Notepad with a byte-order mark, or JSON nested 100,000 levels deep.
:func:`read_user_text` and :func:`read_user_json` check all of that *before*
reading, and turn every failure into one exception whose message names the
file and says what to do. Each caller passes its own exception class
(``error=DatasetError`` ...), so the user sees the error of the stage they ran.

Writes go through :func:`atomic_write_text`: a temporary file beside the
target, renamed over it when complete, so an interrupted run never leaves half
a file behind. :func:`check_free_space` refuses to start writing what will not fit.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from pathlib import Path

MAX_TEXT_BYTES = 1 << 20       # a token, a settings file: 1 MiB is plenty
MAX_JSON_BYTES = 64 << 20      # metadata.json of the whole DFDC (119,000 videos) is about 12 MB


class UnreadableFileError(ValueError):
    """A user-supplied file cannot be read as what it should be; the message says why and what to do."""


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MB"


def _fail(error, path: Path, what: str, problem: str, advice: str):
    text = f"{what} {path} {problem}"
    if advice:
        text += " " + advice
    return error(text)


def check_regular_file(path, what: str = "The file", advice: str = "", error=UnreadableFileError) -> os.stat_result:
    """``os.stat`` of ``path`` if it is an existing regular file (symbolic links followed); else ``error``.

    Folders, named pipes (FIFOs), sockets and devices are refused without being
    opened: opening a pipe for reading blocks until someone writes to it.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _fail(error, path, what, "does not exist.", advice) from None
    except OSError as problem:
        raise _fail(error, path, what, f"cannot be opened ({problem.strerror or problem}).", advice) from None
    if stat.S_ISDIR(info.st_mode):
        raise _fail(error, path, what, "is a folder, not a file.", advice)
    if not stat.S_ISREG(info.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise _fail(error, path, what, f"is {kind}, not a regular file, so it was not opened (reading it "
                    "could wait for ever). Replace it with an ordinary file.", advice)
    return info


def read_user_bytes(path, what: str = "The file", max_bytes: int = MAX_TEXT_BYTES, advice: str = "",
                    error=UnreadableFileError) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ``error`` (naming the file) otherwise."""
    path = Path(path)
    info = check_regular_file(path, what, advice, error)
    if info.st_size > max_bytes:
        raise _fail(error, path, what, f"is {_mb(info.st_size)}; at most {_mb(max_bytes)} is read, so this "
                    "is not the file it should be.", advice)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as problem:
        raise _fail(error, path, what, f"cannot be opened ({problem.strerror or problem}); check that you "
                    "may read it.", advice) from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped for a pipe since the check
            raise _fail(error, path, what, "is not a regular file, so it was not read.", advice)
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _fail(error, path, what, f"grew beyond {_mb(max_bytes)} while being read.", advice)
    return data


def read_user_text(path, what: str = "The file", max_bytes: int = MAX_TEXT_BYTES, advice: str = "",
                   error=UnreadableFileError) -> str:
    """A regular file's text, decoded as UTF-8 (a leading byte-order mark, as Notepad writes it, is dropped)."""
    data = read_user_bytes(path, what, max_bytes, advice, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        raise _fail(error, Path(path), what, f"is not UTF-8 text (undecodable byte at position {problem.start}); "
                    "save it as UTF-8.", advice) from None


def _refuse_duplicates(pairs):
    """``object_pairs_hook`` that keeps every key: a key given twice would silently drop an entry."""
    result, repeated = {}, []
    for key, value in pairs:
        if key in result:
            repeated.append(key)
        result[key] = value
    if repeated:
        raise _DuplicateKeys(repeated)
    return result


class _DuplicateKeys(Exception):
    def __init__(self, keys):
        super().__init__(keys)
        self.keys = keys


def read_user_json(path, what: str = "The file", max_bytes: int = MAX_JSON_BYTES, advice: str = "",
                   error=UnreadableFileError):
    """Parse a user's JSON file with every check of :func:`read_user_text`, and also refuse: an empty
    file, invalid JSON (with line and column), nesting too deep for the parser, and a key given twice
    in one object (JSON allows it, but the later entry would silently replace the earlier one)."""
    path = Path(path)
    text = read_user_text(path, what, max_bytes, advice, error)
    if not text.strip():
        raise _fail(error, path, what, "is empty.", advice)
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as problem:
        raise _fail(error, path, what, f"is not valid JSON (line {problem.lineno}, column {problem.colno}: "
                    f"{problem.msg}).", advice) from None
    except RecursionError:
        raise _fail(error, path, what, "is nested too deeply to be read (more than about a thousand levels "
                    "of brackets); it is not the file it should be.", advice) from None
    except _DuplicateKeys as problem:
        shown = ", ".join(repr(k) for k in problem.keys[:5]) + (" ..." if len(problem.keys) > 5 else "")
        raise _fail(error, path, what, f"gives the same key more than once ({shown}); only one of each would "
                    "be kept. Keep one entry per key.", advice) from None


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".partial"):
    """``with atomic_path(path) as temporary: write(temporary)``: all or nothing.

    The block writes to a temporary file beside ``path`` (its name plus
    ``suffix``; give a suffix ending in the extension a writer insists on,
    e.g. ``".partial.npz"``), which is renamed over ``path`` only when the
    block finishes. If the block fails, the temporary file is removed and
    ``path`` keeps what it held before: an interrupted write never leaves a
    half-written file behind. The one implementation the package uses for
    every file it replaces (JSON, Parquet, checkpoints, feature caches, videos).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + suffix)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file renamed over it: all or nothing."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path, data, indent: int | None = 1) -> Path:
    """:func:`atomic_write_text` of ``json.dumps(data)`` (keys sorted)."""
    return atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=True))


def free_bytes(folder) -> int:
    """Free space on the disk that holds ``folder`` (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_free_space(folder, needed_bytes: int, what: str, margin_bytes: int = 512 << 20, error=OSError,
                     advice: str = "Free some space there and run again.") -> None:
    """Raise ``error`` unless the disk of ``folder`` has ``needed_bytes`` plus ``margin_bytes`` free."""
    free = free_bytes(folder)
    if free < needed_bytes + margin_bytes:
        raise error(f"{what} needs {needed_bytes / 2**30:.2f} GB (plus {margin_bytes / 2**30:.1f} GB to spare) "
                    f"in {folder}, but only {free / 2**30:.2f} GB is free. Nothing was written. {advice}")
