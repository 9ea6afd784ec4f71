"""The checkpoint store: per-object watermarks and import cursors on LMDB.

The daemon uses :func:`open_checkpoint_store` (async; LMDB work runs in worker
threads); ``s3lb state`` uses :func:`open_store_readonly` (sync, never blocks the
daemon). See ``_lmdb`` for the on-disk layout, the durability promise and the
corruption policy.
"""

from __future__ import annotations

from s3lb.checkpoint._lmdb import LmdbStore as LmdbStore
from s3lb.checkpoint._open import open_store as open_store
from s3lb.checkpoint._open import open_store_readonly as open_store_readonly
from s3lb.checkpoint._space import SpaceNeeded as SpaceNeeded
from s3lb.checkpoint._space import space_needed as space_needed
from s3lb.checkpoint._store import CheckpointStatistics as CheckpointStatistics
from s3lb.checkpoint._store import CheckpointStore as CheckpointStore
from s3lb.checkpoint._store import open_checkpoint_store as open_checkpoint_store
from s3lb.checkpoint.records import ImportCursor as ImportCursor
from s3lb.checkpoint.records import ObjectState as ObjectState
from s3lb.checkpoint.records import RecordCounts as RecordCounts
from s3lb.checkpoint.records import Status as Status
from s3lb.checkpoint.records import StoreUsage as StoreUsage

__all__ = [
    "CheckpointStatistics",
    "CheckpointStore",
    "ImportCursor",
    "LmdbStore",
    "ObjectState",
    "RecordCounts",
    "SpaceNeeded",
    "Status",
    "StoreUsage",
    "open_checkpoint_store",
    "open_store",
    "open_store_readonly",
    "space_needed",
]
