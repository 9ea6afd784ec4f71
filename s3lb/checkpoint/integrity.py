"""The integrity check of a checkpoint store, run in a child process.

LMDB keeps no checksums, and a damaged page can crash the process that reads it
(SIGSEGV/SIGBUS, or an LMDB assertion). So :func:`walk` reads every page of every
database in a child (``python -I integrity.py PATH``), and the parent judges its exit:
0 sound, :data:`CORRUPT` damaged (the reason on stdout), a crash signal damaged, anything
else inconclusive. This module imports nothing of s3lb, so the child starts with only
``lmdb`` importable.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import lmdb

__all__ = ["CORRUPT", "CORRUPTION", "INCONCLUSIVE", "truncated", "walk"]

#: Exit status of the child when the store is damaged.
CORRUPT = 3
#: Exit status of the child when LMDB refused for another reason (permissions…).
INCONCLUSIVE = 4

#: LMDB failures that mean the bytes on disk are wrong, as opposed to errno failures
#: (permissions, read-only filesystem, disk full) that must never cause a quarantine.
CORRUPTION = (
    lmdb.CorruptedError,
    lmdb.InvalidError,
    lmdb.PageNotFoundError,
    lmdb.PanicError,
    lmdb.VersionMismatchError,
    lmdb.IncompatibleError,
    lmdb.BadDbiError,
)


def truncated(env: Any, data_file: str | os.PathLike[str]) -> str | None:
    """Why the data file is shorter than the pages in use, or None when it is not.

    Reading a page past the end of the file is a SIGBUS, not an error: check first.
    """
    need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = os.path.getsize(data_file)
    return f"truncated: {size} bytes, {need} in use" if size < need else None


def walk(path: str) -> int:
    """Read every key and value of every database under ``path``; the exit status."""
    try:
        env = lmdb.open(path, readonly=True, lock=True, create=False, max_dbs=8, readahead=False)
        short = truncated(env, os.path.join(path, "data.mdb"))
        if short is not None:
            print(short)
            return CORRUPT
        with env.begin() as txn:
            names = [k for k, _ in txn.cursor()]
        for name in names:
            db = env.open_db(name, create=False)
            with env.begin(db=db) as txn:
                for _ in txn.cursor():
                    pass
    except CORRUPTION as exc:
        print(f"{type(exc).__name__}: {exc}")
        return CORRUPT
    except lmdb.Error as exc:
        print(exc)
        return INCONCLUSIVE
    return 0


if __name__ == "__main__":
    sys.exit(walk(sys.argv[1]))
