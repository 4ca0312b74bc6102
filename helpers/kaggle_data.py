"""The DFDC data from Kaggle: where the client finds credentials, what to do without them, the download.

``prepare_dataset("kaggle")`` (:mod:`helpers.data_sources`) and the classroom
cache (``make prefetch``, :mod:`helpers.cache`) both fetch the competition's
archive with :func:`fetch_kaggle_archive`. The official client is imported
only when a download starts: ``import kaggle`` without credentials prints a
long banner. It needs credentials (``kaggle auth login``, ``KAGGLE_API_TOKEN``,
``~/.kaggle/access_token`` or the legacy ``kaggle.json``) and the competition
rules accepted once on the website; :func:`kaggle_help_message` says how.
"""
from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from . import config, safe_io
from .config import KAGGLE_COMPETITION
from .metadata import DatasetError

KAGGLE_RULES_URL = f"https://www.kaggle.com/competitions/{KAGGLE_COMPETITION}/rules"
KAGGLE_ARCHIVE = f"{KAGGLE_COMPETITION}.zip"
KAGGLE_PREFIX = "train_sample_videos/"


class KaggleSetupError(DatasetError):
    """Kaggle credentials missing or refused, or the competition rules not accepted."""


def find_kaggle_credentials(environ=None, home=None) -> str | None:
    """Where the Kaggle client would find credentials, or None. Nothing is read beyond what is needed.

    Checked like kaggle 2.x does: ``KAGGLE_API_TOKEN``; ``~/.kaggle/access_token``;
    ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``; a legacy ``kaggle.json`` (in
    ``KAGGLE_CONFIG_DIR``, ``~/.kaggle`` or ``~/.config/kaggle``); the OAuth
    login cached by ``kaggle auth login`` (``~/.kaggle/credentials.json``).
    """
    env = os.environ if environ is None else environ
    home = Path(home) if home is not None else Path.home()
    if env.get("KAGGLE_API_TOKEN", "").strip():
        return "the KAGGLE_API_TOKEN environment variable"
    for name in ("access_token", "access_token.txt"):
        token = home / ".kaggle" / name
        if token.is_file() and token.stat().st_size > 0:
            return str(token)
    if env.get("KAGGLE_USERNAME", "").strip() and env.get("KAGGLE_KEY", "").strip():
        return "the KAGGLE_USERNAME and KAGGLE_KEY environment variables"
    config_dirs = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    config_dirs += [home / ".kaggle", Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    for directory in config_dirs:
        legacy = directory / "kaggle.json"
        if legacy.is_file():
            try:
                data = _read_kaggle_json(legacy)
            except KaggleSetupError:
                continue
            if isinstance(data, dict) and data.get("username") and data.get("key"):
                return str(legacy)
    oauth = home / ".kaggle" / "credentials.json"
    if oauth.is_file() and oauth.stat().st_size > 0:
        return f"{oauth} (kaggle auth login)"
    return None


KAGGLE_JSON_ADVICE = ("It should read {\"username\": \"your-kaggle-name\", \"key\": \"the API key\"}: download a "
                      "fresh one at https://www.kaggle.com/settings/api (\"Create New Token\" under the legacy API "
                      "credentials) and put it there, or delete it and use another way to sign in (below).")


def _read_kaggle_json(path: Path):
    return safe_io.read_user_json(path, what="The Kaggle credentials file", max_bytes=64 << 10,
                                  advice=KAGGLE_JSON_ADVICE, error=KaggleSetupError)


def kaggle_credential_problems(environ=None, home=None) -> list[str]:
    """Why credential files that are there cannot be used (empty, not JSON, lacking a field, a folder...).

    :func:`find_kaggle_credentials` passes over such files; when it finds nothing
    else, these sentences tell the user it was *their file* that failed, not that
    there is none.
    """
    env = os.environ if environ is None else environ
    home = Path(home) if home is not None else Path.home()
    problems = []
    config_dirs = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    config_dirs += [home / ".kaggle", Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    for legacy in [d / "kaggle.json" for d in config_dirs]:
        if not os.path.lexists(legacy):
            continue
        try:
            data = _read_kaggle_json(legacy)
        except KaggleSetupError as error:
            problems.append(str(error))
            continue
        if not isinstance(data, dict):
            problems.append(f"The Kaggle credentials file {legacy} holds a JSON {type(data).__name__}, not an "
                            f"object. {KAGGLE_JSON_ADVICE}")
            continue
        lacking = [field for field in ("username", "key") if not (isinstance(data.get(field), str)
                                                                  and data[field].strip())]
        if lacking:
            problems.append(f"The Kaggle credentials file {legacy} has no {' and no '.join(repr(f) for f in lacking)}"
                            f" entry. {KAGGLE_JSON_ADVICE}")
    for name in ("access_token", "access_token.txt"):
        token = home / ".kaggle" / name
        if os.path.lexists(token):
            if not token.is_file():
                problems.append(f"The Kaggle token file {token} is not a regular file; replace it with the token "
                                "from https://www.kaggle.com/settings/api, or delete it.")
            elif token.stat().st_size == 0:
                problems.append(f"The Kaggle token file {token} is empty; paste the token from "
                                "https://www.kaggle.com/settings/api into it, or delete it.")
    return problems


def kaggle_help_message() -> str:
    """What to do when no Kaggle credentials are found."""
    return (
        "No Kaggle credentials found, so the DFDC sample (train_sample_videos, about 400 videos) cannot be "
        "downloaded. To use it:\n"
        f"  1. Sign in at https://www.kaggle.com, open {KAGGLE_RULES_URL} and accept the competition rules "
        "(without that, Kaggle refuses the download with 403).\n"
        "  2. Give the Kaggle client credentials, ONE of:\n"
        "     - run `kaggle auth login` in a terminal where the course's environment is active, or\n"
        "     - create a token at https://www.kaggle.com/settings/api (\"Generate New Token\") and either set\n"
        "       KAGGLE_API_TOKEN=<token> in the environment before starting Jupyter, or save the token in\n"
        "       ~/.kaggle/access_token, or\n"
        "     - save a legacy kaggle.json API key as ~/.kaggle/kaggle.json (chmod 600), or set\n"
        "       KAGGLE_USERNAME and KAGGLE_KEY.\n"
        "  3. Run this again (restart the kernel if you changed environment variables).\n"
        "No account? Use DATA_SOURCE = \"sample\" (built in, no download) or \"folder\" with your own videos."
    )


def _explain_kaggle_error(error: Exception, credentials: str) -> Exception:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        match = re.search(r"\b(401|403|404)\b", str(error))
        status = int(match.group(1)) if match else None
    if status == 403:
        return KaggleSetupError(
            "Kaggle refused the download (403 Forbidden): this account has not accepted the rules of the "
            f"competition. Open {KAGGLE_RULES_URL} while signed in, click \"I Understand and Accept\", and run "
            "again. What was already downloaded is kept; the download resumes.")
    if status == 401:
        return KaggleSetupError(
            f"Kaggle rejected the credentials found in {credentials} (401 Unauthorized): they are wrong or "
            "expired. Run `kaggle auth login` again or create a new token at https://www.kaggle.com/settings/api, "
            "then run again.")
    if status == 404:
        return KaggleSetupError(f"Kaggle does not know the competition {KAGGLE_COMPETITION!r} (404).")
    return DatasetError(
        f"The Kaggle download stopped ({type(error).__name__}: {error}). Check the network and run again: "
        "finished downloads are kept and an interrupted one resumes or restarts cleanly.")


def _download_with_kaggle_client(partial_dir: Path) -> Path:
    """Download the competition archive with the official client into ``partial_dir``; return the zip path.

    The client resumes an interrupted download of the same file by itself.
    ``kaggle`` is imported only here: importing it without credentials prints a banner.
    """
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as error:
        raise KaggleSetupError("The Kaggle client is not installed: pip install kaggle==2.2.5") from error
    api = KaggleApi()
    try:
        api.authenticate()
    except SystemExit:
        raise KaggleSetupError(kaggle_help_message()) from None
    api.competition_download_files(KAGGLE_COMPETITION, path=str(partial_dir), quiet=False)
    return partial_dir / KAGGLE_ARCHIVE


def _archive_complete(path: Path, required: str = KAGGLE_PREFIX + "metadata.json") -> bool:
    """A complete zip: the central directory reads, the required member is there, the CRCs match."""
    try:
        with zipfile.ZipFile(path) as zf:
            if required not in zf.namelist():
                return False
            return zf.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def fetch_kaggle_archive(download_dir=None, downloader=None) -> Path:
    """The DFDC competition archive, downloaded once (skipped when already complete).

    The client writes into ``download_dir/partial/``; only a complete, CRC-checked
    archive is moved to ``download_dir/deepfake-detection-challenge.zip``.
    ``downloader(partial_dir) -> Path`` replaces the Kaggle client (tests).
    """
    download_dir = Path(download_dir or config.data_dir() / "kaggle" / "download")
    final = download_dir / KAGGLE_ARCHIVE
    if final.is_file():
        return final
    credentials = find_kaggle_credentials()
    if credentials is None:
        problems = kaggle_credential_problems()
        if problems:
            raise KaggleSetupError("Kaggle credentials were found but cannot be used:\n  - " + "\n  - ".join(problems)
                                   + "\n\n" + kaggle_help_message().replace("No Kaggle credentials found",
                                                                            "No usable Kaggle credentials", 1),
                                   problems)
        raise KaggleSetupError(kaggle_help_message())
    partial = download_dir / "partial"
    partial.mkdir(parents=True, exist_ok=True)
    print(f"Downloading the {KAGGLE_COMPETITION} archive with credentials from {credentials} ...")
    try:
        got = Path((downloader or _download_with_kaggle_client)(partial))
    except DatasetError:
        raise
    except Exception as error:
        raise _explain_kaggle_error(error, credentials) from error
    if not got.is_file() or not _archive_complete(got):
        if got.is_file():
            got.unlink()  # our own broken download, not a user file
        raise DatasetError(f"The downloaded archive {got.name} is incomplete or corrupt and was removed. "
                           "Run again to restart the download.")
    got.replace(final)
    return final
