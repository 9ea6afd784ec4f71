"""Synthetic data: ALB log lines (distinct, gzip-compressible like real ones), gzip
streams, S3 notification bodies and s3lb-shaped ``_id`` s."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from collections.abc import Iterable, Iterator

from _base import REPO

_AGENTS = [
    "curl/8.5.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "ELB-HealthChecker/2.0",
]
_PATHS = [
    "/",
    "/api/v1/orders",
    "/api/v1/users/{n}",
    "/static/app.{n}.js",
    "/health",
    "/search?q=item{n}&page=2",
    "/img/{n}.png",
    "/checkout/{n}/confirm",
]
_STATUS = [200] * 30 + [201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 500, 502, 503]
_TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-{n}/73e2d6bc24d8a067"
_CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def alb_lines(count: int, seed: int, day: str = "2024-05-01") -> list[bytes]:
    """``count`` distinct ALB lines of today's 30-field layout, all on ``day``.

    Like one object of a busy load balancer: five minutes of requests in time order
    (many lines share a second), varied enough that gzip compresses them about as
    much as real logs (~6:1) and every field path of the parser is taken; each one
    parses (``s3lb parse -f alb``)."""
    rnd = random.Random(seed)
    out = []
    start = (seed * 300) % (86400 - 300)
    for i in range(count):
        sec = start + i * 300 // count
        hms = f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
        t = f"{day}T{hms}.{rnd.randrange(10**6):06d}Z"
        scheme = rnd.choice(("http", "https", "https", "h2"))
        status = rnd.choice(_STATUS)
        target = f"10.0.{rnd.randrange(4)}.{rnd.randrange(1, 255)}:{rnd.choice((80, 8080, 9000))}"
        path = rnd.choice(_PATHS).format(n=rnd.randrange(100000))
        host = f"www{rnd.randrange(3)}.example.com"
        port = 80 if scheme == "http" else 443
        tls = scheme != "http"
        trace = f"Root=1-{rnd.getrandbits(32):08x}-{rnd.getrandbits(96):024x}"
        fields = [
            scheme,
            t,
            "app/my-loadbalancer/50dc6c495c0c9188",
            f"{rnd.randrange(1, 223)}.{rnd.randrange(256)}.{rnd.randrange(256)}"
            f".{rnd.randrange(1, 255)}:{rnd.randrange(1024, 65535)}",
            target,
            f"{rnd.random() / 100:.3f}",
            f"{rnd.random() / 5:.3f}",
            f"{rnd.random() / 100:.3f}",
            str(status),
            str(status),
            str(rnd.randrange(100, 2000)),
            str(rnd.randrange(200, 200000)),
            f'"{rnd.choice(("GET", "GET", "GET", "POST", "PUT"))} '
            f"{scheme if scheme != 'h2' else 'https'}://{host}:{port}{path} "
            f'{"HTTP/2.0" if scheme == "h2" else "HTTP/1.1"}"',
            f'"{rnd.choice(_AGENTS)}"',
            "ECDHE-RSA-AES128-GCM-SHA256" if tls else "-",
            "TLSv1.2" if tls else "-",
            _TG.format(n=rnd.randrange(4)),
            f'"{trace}"',
            f'"{host}"' if tls else '"-"',
            f'"{_CERT}"' if tls else '"-"',
            str(rnd.randrange(0, 50)),
            t,
            '"forward"',
            '"-"',
            '"-"',
            f'"{target}"',
            f'"{status}"',
            '"-"',
            '"-"',
            f"TID_{rnd.getrandbits(128):032x}",
        ]
        out.append(" ".join(fields).encode())
    return out


def alb_text(count: int, seed: int) -> bytes:
    return b"\n".join(alb_lines(count, seed)) + b"\n"


def alb_stream(total_bytes: int, block_lines: int = 20000, seed: int = 1) -> Iterator[bytes]:
    """Plain ALB text of about ``total_bytes`` in blocks, without holding it all:
    one block of distinct lines is generated and repeated with its timestamps'
    seconds field rotated, so that neighbouring blocks differ (gzip's 32 KiB window
    sees no repeats) while generation stays cheap."""
    block = alb_lines(block_lines, seed)
    sent = 0
    n = 0
    while sent < total_bytes:
        # Different trace ids per repetition: rewrite the last 8 hex digits of each.
        tag = f"{n:08x}".encode()
        data = b"\n".join(line[:-8] + tag for line in block) + b"\n"
        if sent + len(data) > total_bytes:
            cut = data.rfind(b"\n", 0, total_bytes - sent) + 1
            data = data[:cut] or data[: data.find(b"\n") + 1]
        sent += len(data)
        n += 1
        yield data


def gzip_stream(blocks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """Gzip ``blocks`` as one member, streaming."""
    z = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for block in blocks:
        out = z.compress(block)
        if out:
            yield out
    yield z.flush()


def notification_bodies(
    bucket: str, objects: list[tuple[str, str, int]], per_message: int = 1
) -> list[str]:
    """SQS bodies of S3 ObjectCreated notifications for ``(key, etag, size)``."""
    bodies = []
    for i in range(0, len(objects), per_message):
        records = [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-01T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key, "size": size, "eTag": etag},
                },
            }
            for key, etag, size in objects[i : i + per_message]
        ]
        bodies.append(json.dumps({"Records": records}))
    return bodies


def doc_ids(prefix: str, n: int) -> list[str]:
    """``n`` ids shaped like s3lb's (32 hex digits of a blake2b)."""
    return [hashlib.blake2b(f"{prefix}:{i}".encode(), digest_size=16).hexdigest() for i in range(n)]


def sample_alb_gzip(lines: int) -> bytes:
    """``lines`` ALB lines (tests/data/formats/alb.log, repeated), gzipped."""
    sample = (REPO / "tests" / "data" / "formats" / "alb.log").read_bytes().splitlines()
    sample = [line for line in sample if line.strip()]
    text = b"\n".join(sample[i % len(sample)] for i in range(lines)) + b"\n"
    return gzip.compress(text, 6)
