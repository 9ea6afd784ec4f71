"""Named crash points for the reliability tests: ``S3LB_CRASH_AT=name:n`` makes the
process exit with status 137 (as after ``kill -9``) the n-th time it passes ``name``.

Without the variable (always, in production) :func:`crash_point` is a dictionary
lookup that does nothing. Names: ``after_es_ack``, ``before_ckpt_commit``,
``mid_lmdb_txn``, ``after_ckpt_commit``, ``after_done_mark``, ``before_delete``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["NAMES", "crash_point"]

NAMES = (
    "after_es_ack",
    "before_ckpt_commit",
    "mid_lmdb_txn",
    "after_ckpt_commit",
    "after_done_mark",
    "before_delete",
)


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, spec.split(",")):
        name, _, count = item.partition(":")
        if name not in NAMES:
            raise SystemExit(f"S3LB_CRASH_AT: unknown crash point {name!r}; known: {NAMES}")
        armed[name] = int(count or 1)
    return armed


_ARMED = _parse(os.environ.get("S3LB_CRASH_AT", ""))


def crash_point(name: str) -> None:
    """Exit at once (status 137, nothing flushed) if ``name`` is armed and due."""
    if not _ARMED or name not in _ARMED:
        return
    _ARMED[name] -= 1
    if _ARMED[name] == 0:
        sys.stderr.write(f"s3lb: crash point {name} reached (S3LB_CRASH_AT)\n")
        sys.stderr.flush()
        os._exit(137)
