"""A seeded corpus of AWS log objects and the oracle that knows what must be indexed.

Every generated record embeds a *marker* ``s3lbrel-<object>-<ordinal>-<checksum>`` in a
field its format keeps verbatim, so a stored document says by itself which record it
came from. For each object the oracle knows:

- every record position, with the document the record parses to (the independent
  sequential parse of the whole object, as ``s3lb parse`` does it), ``None`` for a header
  or a blank line, or the failure kind (``parse_failed``/``oversize``) of a bad line;
- hence, once the object's identity (ETag or version id) is known, the exact set of
  expected ``_id`` s and the body each must have.

Checks are then set comparisons (``expected == indexed``), never counts. The generator
is deterministic for a seed: the same seed gives byte-identical objects.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from s3lb.model import ObjectRef, document_id
from s3lb.pipeline.framing import DEFAULT_MAX_LINE_BYTES
from s3lb.pipeline.parsing import ObjectCutter, ObjectParser, ParseFailure
from tests.paths import SAMPLES as SAMPLES_DIR
from tests.paths import SEED as SEED_DIR

__all__ = [
    "FORMATS",
    "MARKER",
    "Corpus",
    "CorpusObject",
    "Expected",
    "alb_key",
    "alb_lines",
    "custom_object",
    "generate",
    "marker",
    "notification",
    "oracle_records",
    "s3_encode_key",
]

SAMPLES = SAMPLES_DIR
#: The marker every generated record carries: object number, ordinal, checksum.
MARKER = re.compile(r"s3lbrel-(\d+)-(\d+)-([0-9a-f]{8})")
_ACCT = "AWSLogs/123456789012"


def marker(oid: int, ordinal: int) -> str:
    """The marker of record ``ordinal`` (1-based, data records only) of object ``oid``."""
    check = zlib.crc32(f"{oid}:{ordinal}".encode()) & 0xFFFFFFFF
    return f"s3lbrel-{oid}-{ordinal}-{check:08x}"


def _sample_line(name: str, n: int = 0, contains: str = "") -> str:
    lines = [x for x in (SAMPLES / name).read_text().splitlines() if x and not x.startswith("#")]
    if contains:
        lines = [x for x in lines if contains in x]
    return lines[n]


def _filler(mark: str, n: int) -> str:
    """``n`` letters (g–z: never hex, so the marker stays unambiguous) that gzip cannot
    squeeze much, the same for the same marker."""
    if not n:
        return ""
    return "".join(random.Random(mark).choices("ghijklmnopqrstuvwxyz", k=n))


def _replacing(template: str, old: str, new: str) -> Callable[[str, int], str]:
    if old not in template:
        raise AssertionError(f"{old!r} not in template {template[:80]!r}")

    def make(mark: str, pad: int) -> str:
        return template.replace(old, new.format(m=mark + _filler(mark, pad)), 1)

    return make


@dataclass(frozen=True, slots=True)
class _Format:
    """How to write objects of one format: key layout, header lines, a record maker."""

    name: str
    key: Callable[[random.Random], str]
    header: tuple[str, ...]
    record: Callable[[str, int], str]  # (marker, padding bytes) -> record text
    bad_line: str | None  # a line the format refuses ({m} is the marker), if any
    gzip_only: bool = False  # the key layout ends in .gz


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _formats() -> dict[str, _Format]:
    elb_dir = f"{_ACCT}/elasticloadbalancing/us-east-2/2016/08/10/"
    cloudtrail_record = json.loads((SAMPLES / "cloudtrail.json").read_text())["Records"][0]

    def cloudtrail(mark: str, pad: int) -> str:
        record = dict(cloudtrail_record, eventID=mark + _filler(mark, pad))
        return json.dumps(record, separators=(",", ":"))

    cloudfront_header = tuple(
        x for x in (SAMPLES / "cloudfront.log").read_text().splitlines() if x.startswith("#")
    )
    vpc_lines = (SAMPLES / "vpcflow_default_v2.log").read_text().splitlines()
    return {
        "alb": _Format(
            "alb",
            lambda r: (
                f"{elb_dir}123456789012_elasticloadbalancing_us-east-2_app.my-lb."
                f"{_hex(r, 16)}_20160810T2200Z_10.0.0.1_{_hex(r, 8)}.log"
            ),
            (),
            _replacing(_sample_line("alb.log"), '"curl/7.46.0"', '"{m}"'),
            "not an alb line {m}",
        ),
        "elb": _Format(
            "elb",
            lambda r: (
                f"{elb_dir}123456789012_elasticloadbalancing_us-east-2_my-loadbalancer_"
                f"20150513T2339Z_192.168.131.39_{_hex(r, 8)}.log"
            ),
            (),
            _replacing(_sample_line("clb.log"), '"curl/7.38.0"', '"{m}"'),
            "2015-05-13T23:39:43.945958Z {m}",
        ),
        "nlb": _Format(
            "nlb",
            lambda r: (
                f"{elb_dir}123456789012_elasticloadbalancing_us-east-2_net.my-nlb."
                f"{_hex(r, 16)}_20200401T0850Z_{_hex(r, 8)}.log"
            ),
            (),
            _replacing(
                _sample_line("nlb.log"),
                "my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com",
                "{m}.example.com",
            ),
            "tls 2.0 bogus {m}",
        ),
        "cloudfront": _Format(
            "cloudfront",
            lambda r: f"cloudfront/E2EXAMPLE12345.2019-12-04-21.{_hex(r, 8)}.gz",
            cloudfront_header,
            _replacing(_sample_line("cloudfront.log"), "/index.html", "/{m}"),
            "2019-12-04\t{m}",
            gzip_only=True,
        ),
        "vpcflow": _Format(
            "vpcflow",
            lambda r: (
                f"{_ACCT}/vpcflowlogs/us-east-1/2021/01/01/123456789012_vpcflowlogs_"
                f"us-east-1_fl-1234abcd_20210101T0000Z_{_hex(r, 8)}.log.gz"
            ),
            (vpc_lines[0],),
            _replacing(vpc_lines[1], "eni-1235b8ca123456789", "eni-{m}"),
            "2 {m}",
            gzip_only=True,
        ),
        "s3access": _Format(
            "s3access",
            lambda r: f"s3-access/2019-02-06-00-00-38-{_hex(r, 16).upper()}",
            (),
            _replacing(
                _sample_line("s3_access.log"),
                '"GET /DOC-EXAMPLE-BUCKET1?versioning HTTP/1.1"',
                '"GET /{m} HTTP/1.1"',
            ),
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be {m}",
        ),
        "waf": _Format(
            "waf",
            lambda r: (
                f"{_ACCT}/WAFLogs/us-east-1/acl/2019/03/23/17/05/123456789012_waflogs_"
                f"us-east-1_acl_20190323T1705Z_{_hex(r, 8)}.log.gz"
            ),
            (),
            _replacing(
                (SEED_DIR / "waf.log").read_text().splitlines()[0],
                "2668f4a5-da32-4d63-bea8-1ed02607da4f",
                "{m}",
            ),
            '{{"broken": "{m}"',
            gzip_only=True,
        ),
        "route53_resolver": _Format(
            "route53_resolver",
            lambda r: (
                f"{_ACCT}/vpcdnsquerylogs/vpc-0a1b2c3d/2021/05/11/vpc-0a1b2c3d_"
                f"vpcdnsquerylogs_123456789012_20210511T0910Z_{_hex(r, 8)}.log.gz"
            ),
            (),
            _replacing(
                _sample_line("route53_resolver.log"), "15.3.4.32.in-addr.arpa.", "{m}.example."
            ),
            '{{"query_name": "{m}"',
            gzip_only=True,
        ),
        "network_firewall": _Format(
            "network_firewall",
            lambda r: (
                f"{_ACCT}/network-firewall/flow/us-east-1/prod-fw/2025/10/21/15/"
                f"123456789012_network-firewall_flow_us-east-1_prod-fw_202510211500_"
                f"{_hex(r, 8)}.log.gz"
            ),
            (),
            _replacing(_sample_line("network_firewall.log", 1), "prod-egress-fw", "{m}"),
            '{{"firewall_name": "{m}"',
            gzip_only=True,
        ),
        "cloudtrail": _Format(
            "cloudtrail",
            lambda r: (
                f"{_ACCT}/CloudTrail/us-east-1/2014/03/06/123456789012_CloudTrail_"
                f"us-east-1_20140306T2225Z_{_hex(r, 12)}.json"
            ),
            (),
            cloudtrail,
            None,  # one JSON document: a bad record would break the whole object
        ),
    }


FORMATS: dict[str, _Format] = _formats()


@dataclass(frozen=True, slots=True)
class Expected:
    """What the oracle expects of one record position."""

    position: int
    doc: dict[str, Any] | None  # None: a header or blank line, or a failure
    failure: str = ""  # "parse_failed" or "oversize" when the record is dead-lettered
    ordinal: int = 0  # the generator's data-record number (0 for headers and bad lines)
    end: int = 0  # byte offset just past the record in the decompressed text


@dataclass(slots=True)
class CorpusObject:
    """One generated object: where it goes, its bytes, and what each record should give."""

    oid: int
    bucket: str
    key: str
    fmt: str
    text: bytes
    compressed: bool
    records: list[Expected]
    etag: str = ""
    version_id: str = ""
    body: bytes = b""

    @property
    def ref(self) -> ObjectRef:
        """The object's identity as s3lb sees it (set ``etag`` once uploaded)."""
        return ObjectRef(self.bucket, self.key, self.etag, self.version_id)

    def doc_id(self, position: int) -> str:
        """The ``_id`` of the record at ``position``."""
        return document_id(self.ref, position)

    def expected_docs(self, exclude: Iterable[int] = ()) -> dict[str, dict[str, Any]]:
        """``{_id: body}`` of every record that must be indexed (``exclude``: positions a
        scenario makes unindexable, e.g. a mapping reject)."""
        skip = set(exclude)
        return {
            self.doc_id(r.position): r.doc
            for r in self.records
            if r.doc is not None and r.position not in skip
        }

    def failed_positions(self) -> set[int]:
        """Positions of records that must be dead-lettered as parse failures."""
        return {r.position for r in self.records if r.failure}

    @property
    def data_records(self) -> int:
        """Records that give a document."""
        return sum(r.doc is not None for r in self.records)


@dataclass(slots=True)
class Corpus:
    """Objects and the oracle over all of them."""

    objects: list[CorpusObject] = field(default_factory=list)

    def expected_docs(self, exclude: Mapping[int, Iterable[int]] | None = None) -> dict[str, Any]:
        """``{_id: body}`` over every object (``exclude`` by object id → positions)."""
        out: dict[str, Any] = {}
        for obj in self.objects:
            out.update(obj.expected_docs((exclude or {}).get(obj.oid, ())))
        return out

    def expected_ids(self, exclude: Mapping[int, Iterable[int]] | None = None) -> set[str]:
        """Every ``_id`` that must be in the index."""
        return set(self.expected_docs(exclude))

    def by_key(self, bucket: str, key: str) -> CorpusObject:
        """The object at ``bucket``/``key``."""
        for obj in self.objects:
            if (obj.bucket, obj.key) == (bucket, key):
                return obj
        raise KeyError(f"{bucket}/{key}")


def oracle_records(
    key: str, text: bytes, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> list[Expected]:
    """Parse ``text`` (decompressed) as one sequential, uninterrupted read of ``key``."""
    parser = ObjectParser("auto", key, max_line_bytes=max_line_bytes)
    cutter = ObjectCutter(parser)
    out: list[Expected] = []
    for record in [*cutter.feed(text), *cutter.close()]:
        doc = parser.parse(record)
        if isinstance(doc, ParseFailure):
            out.append(Expected(record.position, None, doc.kind, end=record.end))
            continue
        found = MARKER.search(json.dumps(doc)) if doc is not None else None
        ordinal = int(found.group(2)) if found else 0
        out.append(Expected(record.position, _normal(doc), ordinal=ordinal, end=record.end))
    return out


def _normal(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """``doc`` as it comes back from the cluster (a JSON round trip)."""
    return None if doc is None else msgspec.json.decode(msgspec.json.encode(doc))


def s3_encode_key(key: str) -> str:
    """A key as S3 writes it in event notifications (form encoding: a space is ``+``)."""
    from urllib.parse import quote_plus

    return quote_plus(key, safe="/")


def notification(
    objects: Sequence[CorpusObject], *, sns: bool = False, event_time: str = ""
) -> str:
    """An S3 event notification body naming ``objects`` (in one message), optionally
    wrapped in an SNS envelope."""
    records = [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": event_time or "2025-10-21T14:55:02.137Z",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "bucket": {"name": obj.bucket},
                "object": {
                    "key": s3_encode_key(obj.key),
                    "size": len(obj.body),
                    "eTag": obj.etag,
                    **({"versionId": obj.version_id} if obj.version_id else {}),
                },
            },
        }
        for obj in objects
    ]
    body = json.dumps({"Records": records})
    if sns:
        return json.dumps(
            {
                "Type": "Notification",
                "MessageId": "00000000-0000-0000-0000-000000000000",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:s3lb-rel",
                "Message": body,
            }
        )
    return body


def generate(
    seed: int,
    *,
    bucket: str = "rel-bucket",
    formats: Sequence[str] | None = None,
    objects: int = 0,
    records: tuple[int, int] = (1, 40),
    gzip_ratio: float = 0.5,
    bad_line_ratio: float = 0.0,
    odd_keys: bool = True,
    empty: bool = False,
    pad: tuple[int, int] = (0, 0),
    first_oid: int = 1,
) -> Corpus:
    """A deterministic corpus for ``seed``.

    Args:
        formats: format names (default every format, round robin); ``objects`` defaults
            to one object per format.
        records: inclusive range of data records per object.
        gzip_ratio: share of gzip objects (formats whose AWS keys end in ``.gz`` always are).
        bad_line_ratio: probability that an unparseable line follows a record.
        odd_keys: some keys get a prefix with a space, a ``+``, ``=`` and non-ASCII.
        empty: add one empty (zero-byte) object at the end.
        pad: extra bytes added to each record's marker field (a uniform random range).
        first_oid: number of the first object (keep corpora of one test distinct).
    """
    rng = random.Random(seed)
    names = list(formats or FORMATS)
    count = objects or len(names)
    corpus = Corpus()
    for n in range(count):
        oid = first_oid + n
        fmt = FORMATS[names[n % len(names)]]
        key = fmt.key(rng)
        if odd_keys and n % 3 == 1:
            key = f"odd dir+x=ü/{oid}/{key}"
        compressed = fmt.gzip_only or rng.random() < gzip_ratio
        if compressed and not key.endswith(".gz"):
            key += ".gz"
        lines: list[str] = list(fmt.header)
        for ordinal in range(1, rng.randint(*records) + 1):
            lines.append(fmt.record(marker(oid, ordinal), rng.randint(*pad)))
            if fmt.bad_line is not None and rng.random() < bad_line_ratio:
                lines.append(fmt.bad_line.format(m=f"bad-{oid}-{ordinal}"))
        if fmt.name == "cloudtrail":
            text = ('{"Records":[' + ",".join(lines) + "]}").encode()
        else:
            text = ("\n".join(lines) + "\n").encode()
        corpus.objects.append(_object(oid, bucket, key, fmt.name, text, compressed))
    if empty:
        oid = first_oid + count
        corpus.objects.append(
            _object(oid, bucket, f"{_ACCT}/empty/{oid}/empty.log", "alb", b"", False)
        )
    return corpus


def _object(
    oid: int, bucket: str, key: str, fmt: str, text: bytes, compressed: bool
) -> CorpusObject:
    body = gzip.compress(text, 6, mtime=0) if compressed else text
    return CorpusObject(
        oid, bucket, key, fmt, text, compressed, oracle_records(key, text), body=body
    )


def custom_object(
    oid: int,
    key: str,
    text: bytes,
    *,
    bucket: str = "rel-bucket",
    compressed: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> CorpusObject:
    """An object with hand-made ``text`` (bad inputs), known to the oracle like the rest."""
    body = gzip.compress(text, 6, mtime=0) if compressed else text
    records = oracle_records(key, text, max_line_bytes)
    return CorpusObject(oid, bucket, key, "custom", text, compressed, records, body=body)


def alb_lines(oid: int, n: int, pad: int = 0) -> list[str]:
    """``n`` ALB records of object ``oid`` with their markers (for hand-made objects)."""
    make = FORMATS["alb"].record
    return [make(marker(oid, i), pad) for i in range(1, n + 1)]


def alb_key(oid: int, suffix: str = "") -> str:
    """An ALB key as AWS writes it, unique to ``oid``."""
    return (
        f"{_ACCT}/elasticloadbalancing/us-east-2/2016/08/10/123456789012_elasticloadbalancing_"
        f"us-east-2_app.my-lb.50dc6c495c0c9188_20160810T2200Z_10.0.0.1_{oid:08x}.log{suffix}"
    )
