"""Fill a classroom cache once: every pretrained weight file the course can use, and the DFDC archive.

    python tools/prefetch.py --cache /shared/course-cache      (what `make prefetch CACHE=...` runs)
    python tools/prefetch.py --cache DIR --no-dfdc             weights only
    python tools/prefetch.py --cache DIR --check               verify what is there, download nothing

Then, on every machine of the room: `export DEEPFAKE_CACHE=/shared/course-cache` before
`make course` or Jupyter. The folder's manifest.json lists each file's SHA-256, size
and source; the course checks them before use (helpers/cache.py). Run it again to
add what is missing or replace what is damaged: files that check out are kept.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import cache, config, data_sources  # noqa: E402

DEFAULT_CACHE = config.REPO_ROOT / "data" / "course-cache"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=config.cache_dir() or DEFAULT_CACHE,
                        help=f"the cache folder (default: $DEEPFAKE_CACHE, else {DEFAULT_CACHE})")
    dfdc = parser.add_mutually_exclusive_group()
    dfdc.add_argument("--dfdc", dest="dfdc", action="store_true", default=None,
                      help="also download the DFDC archive (needs Kaggle credentials; default: when found)")
    dfdc.add_argument("--no-dfdc", dest="dfdc", action="store_false", help="weights only")
    parser.add_argument("--check", action="store_true", help="only verify the cache's files against its manifest")
    args = parser.parse_args(argv)
    try:
        if args.check:
            report = cache.check_cache(args.cache, rehash=True)
        else:
            print(f"Filling the course cache {args.cache} ...")
            report = cache.prefetch(args.cache, dfdc=args.dfdc)
    except (cache.CacheError, cache.DownloadCheckError, data_sources.DatasetError) as error:
        print(f"prefetch: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # no network, a proxy, a full disk
        print(f"prefetch: a download failed ({type(error).__name__}: {error}). Check the connection and run "
              "again: what was finished is kept.", file=sys.stderr)
        return 1
    print(report.summary())
    if report.ok:
        print(f"\nUse it on every machine: export DEEPFAKE_CACHE={args.cache.resolve()}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
