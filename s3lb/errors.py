"""The s3lb exception tree.

::

    S3lbError
    ├── ConfigError              bad or missing settings (exit 2)
    ├── TransientError           retry with backoff; the SQS message stays
    │   ├── SourceUnavailable    SQS/S3 throttling, 5xx, network errors, timeouts
    │   └── SinkUnavailable      cluster 429/5xx/401/403, refused connection, timeout
    ├── PermanentError           retrying cannot help
    │   ├── ObjectGone           NoSuchKey, or the object changed under us
    │   ├── ObjectCorrupt        corrupt or truncated gzip stream
    │   └── AccessDenied         S3 refused the GET (403)
    └── CheckpointError          the LMDB store cannot be used (read-only dir, disk error)
        ├── CheckpointCorrupt    integrity check failed (quarantined at open)
        └── CheckpointFull       LMDB map full: raise checkpoint.map_size

ParseError (per record) lives in :mod:`s3lb.formats` and never escapes the reader.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "CheckpointCorrupt",
    "CheckpointError",
    "CheckpointFull",
    "ConfigError",
    "ObjectCorrupt",
    "ObjectGone",
    "PermanentError",
    "S3lbError",
    "SinkUnavailable",
    "SourceUnavailable",
    "TransientError",
]


class S3lbError(Exception):
    """Base of every error s3lb raises on purpose."""


class ConfigError(S3lbError):
    """The configuration is invalid; ``path`` names the offending key."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class TransientError(S3lbError):
    """A failure worth retrying later."""


class SourceUnavailable(TransientError):
    """SQS or S3 could not be reached or answered with a retryable error."""


class SinkUnavailable(TransientError):
    """The cluster could not take a bulk request as a whole."""


class PermanentError(S3lbError):
    """A failure that retrying cannot fix."""


class ObjectGone(PermanentError):
    """The object no longer exists (NoSuchKey) or changed while we read it."""


class ObjectCorrupt(PermanentError):
    """The object's bytes cannot be decoded (corrupt or truncated gzip)."""


class AccessDenied(PermanentError):
    """S3 refused to serve the object."""


class CheckpointError(S3lbError):
    """The checkpoint store cannot be opened or written."""


class CheckpointCorrupt(CheckpointError):
    """The store failed its integrity check; ``path`` names the store directory."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class CheckpointFull(CheckpointError):
    """The store reached its map size (LMDB ``MDB_MAP_FULL``); ``path`` names it."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(message)
