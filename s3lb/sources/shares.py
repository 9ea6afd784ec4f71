"""Shares of an import job over N worker processes: which listed keys a worker ships
(pure).

Worker ``i`` of ``N`` ships the keys whose BLAKE2b digest (8 bytes, of the key's UTF-8
bytes) modulo ``N`` is ``i - 1``: stable across processes, runs and hosts, unlike
Python's salted ``hash()``, and even on keys that differ by a digit (CRC-32 is linear:
its parity can be the same for a whole run of such keys). Each share keeps its own
cursor, under the job's id plus ``share=i/N``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["SHARE_MARK", "Share", "split_job_id"]

#: What a share's cursor adds to its job's id: `` share=2/4``.
SHARE_MARK = " share="


@dataclass(frozen=True, slots=True)
class Share:
    """Worker ``index`` (1…``count``) of a job's ``count`` shares."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"share {self.index}/{self.count}: needs 1 <= index <= count")

    @classmethod
    def parse(cls, text: str) -> Share:
        """``"2/4"`` → ``Share(2, 4)``. Raises ValueError."""
        index, sep, count = text.partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise ValueError(f"share {text!r}: expected INDEX/COUNT, e.g. 1/4")
        return cls(int(index), int(count))

    def holds(self, key: str) -> bool:
        """Whether this share ships ``key``."""
        data = key.encode("utf-8", "surrogatepass")
        digest = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")
        return digest % self.count == self.index - 1

    def job_id(self, job_id: str) -> str:
        """The id this share's cursor is stored under."""
        return f"{job_id}{SHARE_MARK}{self}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def split_job_id(job_id: str) -> tuple[str, Share | None]:
    """A stored cursor's job id → (the job's own id, its share or None)."""
    base, sep, tail = job_id.rpartition(SHARE_MARK)
    if sep:
        try:
            return base, Share.parse(tail)
        except ValueError:
            pass
    return job_id, None
