"""Process tier (T2) helpers: ``s3lb run`` as a subprocess
(:class:`~tests.support.daemon.S3lbProcess`) against real services on 127.0.0.1 (moto
in server mode for S3/SQS, the fake cluster's HTTP server or the real OpenSearch node),
restarted as often as a scenario needs, each run with its own log.

:func:`daemon_config` is :func:`~tests.support.configs.s3lb_config` with this tier's
defaults; :func:`upload` puts a corpus into moto and :func:`notify` sends hand-made
notifications (several objects per message); :func:`check_store` and
:func:`check_delivered` check I5 and I1–I3 after a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from s3lb.checkpoint import open_store_readonly
from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.reliability.corpus import Corpus, CorpusObject, notification
from tests.reliability.harness import dead_letters
from tests.support.configs import s3lb_config

__all__ = [
    "acked_prefix",
    "check_delivered",
    "check_store",
    "check_watermarks",
    "daemon_config",
    "notify",
    "upload",
]


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


def acked_prefix(obj: CorpusObject, acked: set[str], rejected: set[str | None]) -> int:
    """The longest prefix of ``obj``'s records the cluster acknowledged (``acked``) or
    that needed no acknowledgement: headers, blank lines, dead-lettered (``rejected``)."""
    prefix = 0
    for record in obj.records:
        doc_id = obj.doc_id(record.position)
        if record.doc is not None and doc_id not in acked and doc_id not in rejected:
            break
        prefix = record.position
    return prefix


def check_store(state_dir: Path, corpus: Corpus, es: FakeEs) -> dict[str, int]:
    """I5 on the real store: it opens (read-only, beside nobody), and no watermark is
    ahead of the acknowledged prefix. Returns ``{key: acked}``."""
    return _check_store(state_dir, corpus, es)[0]


def check_watermarks(state_dir: Path, corpus: Corpus, es: FakeEs) -> int:
    """:func:`check_store` after a kill; how many objects had a watermark past 0."""
    return _check_store(state_dir, corpus, es)[1]


def _check_store(state_dir: Path, corpus: Corpus, es: FakeEs) -> tuple[dict[str, int], int]:
    store = open_store_readonly(state_dir)
    if store is None:
        return {}, 0
    try:
        states = store.objects()
    finally:
        store.close()
    acked = {doc_id for _, doc_id in es.first_ack}
    rejected = {e.get("_id") for e in dead_letters(state_dir)}
    out: dict[str, int] = {}
    advanced = 0
    for stored in states:
        obj = corpus.by_key(stored.bucket, stored.key)
        prefix = acked_prefix(obj, acked, rejected)
        assert stored.acked <= prefix, f"I5: {obj.key} stored {stored.acked} > acked {prefix}"
        out[stored.key] = stored.acked
        advanced += stored.acked > 0
    return out, advanced


def check_delivered(corpus: Corpus, es: FakeEs) -> None:
    """I1, I2, I3 against the oracle."""
    expected = corpus.expected_docs()
    docs = es.docs
    ids = [doc_id for _, doc_id in docs]
    assert set(ids) == set(expected), (len(set(expected) - set(ids)), len(set(ids) - set(expected)))
    assert len(ids) == len(set(ids)), "I2: an id in two indexes"
    assert all(body == expected[doc_id] for (_, doc_id), body in docs.items()), "I3"
