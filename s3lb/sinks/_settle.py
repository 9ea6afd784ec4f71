"""Settling sent items on their objects' trackers.

The pipeline imports the sinks, so the sinks import the pipeline's types only for type
checking.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from s3lb.crashpoints import crash_point

if TYPE_CHECKING:
    from s3lb.pipeline._acks import BulkItem, ObjectTracker

__all__ = ["settle"]


def settle(items: Iterable[BulkItem], outcome: str) -> None:
    """Settle ``items`` with ``outcome``: one ``ObjectTracker.settle`` per object."""
    groups: dict[ObjectTracker, list[BulkItem]] = {}
    for item in items:
        groups.setdefault(item.tracker, []).append(item)
    for tracker, group in groups.items():
        tracker.settle(outcome, group)
    crash_point("after_es_ack")
