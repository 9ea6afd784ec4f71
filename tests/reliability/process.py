"""Process tier (T2) helpers: ``s3lb run`` as a subprocess
(:class:`~tests.support.daemon.S3lbProcess`) against real services on 127.0.0.1 (moto
in server mode for S3/SQS, the fake cluster's HTTP server or the real OpenSearch node),
restarted as often as a scenario needs, each run with its own log.

:func:`daemon_config` is :func:`~tests.support.configs.s3lb_config` with this tier's
defaults; :func:`upload` puts a corpus into moto and :func:`notify` sends hand-made
notifications (several objects per message).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import Aws
from tests.reliability.corpus import Corpus, CorpusObject, notification
from tests.support.configs import s3lb_config

__all__ = ["daemon_config", "notify", "upload"]


def daemon_config(
    state_dir: Path,
    queues: Sequence[str],
    es_url: str,
    *,
    es: dict[str, Any] | None = None,
    **settings: Any,
) -> str:
    """The process tier's configuration; ``settings`` are ``s3lb.*`` keys, ``es`` extra
    ``output.elasticsearch.*`` keys."""
    return s3lb_config(
        state_dir=state_dir,
        queues=queues,
        es_url=es_url,
        es={"index": "rel-%{+yyyy.MM.dd}", "bulk_max_size": 200, **(es or {})},
        **{"stats_interval": "1h", "object_workers": 4, **settings},
    )


def upload(aws: Aws, bucket: str, corpus: Corpus | Iterable[CorpusObject]) -> None:
    """Put every object into ``bucket`` (moto) and note its ETag."""
    objects = corpus.objects if isinstance(corpus, Corpus) else list(corpus)
    for obj in objects:
        obj.bucket = bucket
        obj.etag = aws.put(bucket, obj.key, obj.body)


def notify(aws: Aws, queue: str, objects: Sequence[CorpusObject], per_message: int = 1) -> None:
    """Send notifications naming ``objects``, ``per_message`` objects per message."""
    for i in range(0, len(objects), per_message):
        aws.send(queue, notification(objects[i : i + per_message]))
