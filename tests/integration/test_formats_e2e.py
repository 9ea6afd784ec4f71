"""Every AWS format through the daemon with ``log_format: auto``: the format is chosen
from the key layout AWS writes, and each object's documents are exactly what
``s3lb parse`` makes of the same bytes."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable

import pytest

from s3lb.cli.parse import parse_stream
from s3lb.formats import detect_format
from s3lb.pipeline.parsing import ObjectParser
from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.paths import SAMPLES as SAMPLES_DIR
from tests.support.configs import s3lb_config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import wait_until

pytestmark = pytest.mark.slow

SAMPLES = SAMPLES_DIR
A = "AWSLogs/123456789012"
OBJECTS = [  # (sample, key as AWS writes it, gzip)
    (
        "cloudtrail.json",
        f"{A}/CloudTrail/us-east-1/2014/03/06/123456789012_CloudTrail_us-east-1_20140306T2225Z_abcdEFGH1234.json.gz",
        True,
    ),
    (
        "vpcflow_custom_v5.log",
        f"{A}/vpcflowlogs/us-east-1/2021/01/01/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20210101T0000Z_1a2b3c4d.log.gz",
        True,
    ),
    (
        "nlb.log",
        f"{A}/elasticloadbalancing/us-east-2/2020/04/01/123456789012_elasticloadbalancing_us-east-2_net.my-nlb.c6e77e28c25b2234_20200401T0850Z_1a2b3c4d.log.gz",
        True,
    ),
    ("s3_access.log", "s3-access/2019-02-06-00-00-38-5C1A2B3C4D5E6F70", False),
    ("cloudfront.log", "cloudfront/E2EXAMPLE12345.2019-12-04-21.a1b2c3d4.gz", True),
]
DIGEST = (
    "cloudtrail_digest.json",
    f"{A}/CloudTrail-Digest/us-east-1/2014/03/06/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20140306T2225Z.json.gz",
    True,
)


def expected_documents(data: bytes, key: str) -> list[dict[str, object]]:
    out = io.BytesIO()
    failures = parse_stream(io.BytesIO(data), ObjectParser("auto", key), out, io.StringIO())
    assert failures == 0, key
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_auto_ships_every_format_as_parse_shows_it(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    queue = aws.queue()
    bucket = aws.bucket(queue)
    expected: dict[str, list[dict[str, object]]] = {}
    for sample, key, compress in [*OBJECTS, DIGEST]:
        data = (SAMPLES / sample).read_bytes()
        aws.put(bucket, key, data, compress)
        if sample != DIGEST[0]:
            expected[key] = expected_documents(gzip.compress(data) if compress else data, key)
    # auto chose each format from the key alone, as AWS lays keys out.
    assert [detect_format(key) for _, key, _ in OBJECTS] == [
        "cloudtrail",
        "vpcflow",
        "nlb",
        "s3access",
        "cloudfront",
    ]
    total = sum(len(docs) for docs in expected.values())
    assert all(expected.values()) and total > 20

    run = daemon(
        s3lb_config(
            queues=[queue],
            es_url=fake_es.url,
            es={
                "index": "logs-%{+yyyy.MM.dd}",
                "flush_interval": "100ms",
                "backoff.init": None,
                "backoff.max": None,
            },
            shutdown_timeout=None,
        )
    )
    wait_until(lambda: len(fake_es.docs) >= total, 30, "every document")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    assert run.stop() == 0
    indexed = sorted(json.dumps(d, sort_keys=True) for d in fake_es.docs.values())
    wanted = sorted(json.dumps(d, sort_keys=True) for docs in expected.values() for d in docs)
    assert indexed == wanted
    assert "object skipped" in run.log and "cloudtrail-digest" in run.log
