"""The SQS notification decoder against every documented sample, plus edge cases."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3lb.aws.notifications import (
    Notification,
    RecordFailure,
    UndecodableMessage,
    decode_key,
    decode_notification,
)
from s3lb.model import ObjectRef
from tests.paths import SAMPLES as SAMPLES_DIR
from tests.paths import SEED as SEED_DIR

SAMPLES = SAMPLES_DIR / "s3_event_notifications.json"
SEED = SEED_DIR

ALB_KEY_1450 = (
    "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/10/21/123456789012_"
    "elasticloadbalancing_us-east-1_app.prod-web-alb.5f2d8c1e9a7b3c40_20251021T1450Z_"
    "10.0.1.54_4k2j9x1q.log.gz"
)
ALB_KEY_1455 = ALB_KEY_1450.replace("T1450Z", "T1455Z")
SEED_ALB_KEY = (
    "app-env-3/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2018/07/07/123456789012_"
    "elasticloadbalancing_eu-west-1_app.app-env-3.ad4ceee8a897566c_20180707T0935Z_"
    "52.17.184.44_4vsrpn7y.log.gz"
)


def _created(*refs: ObjectRef) -> Notification:
    return Notification(objects=refs)


def _ignored(*reasons: str) -> Notification:
    return Notification(ignored=reasons)


UNDECODABLE = "undecodable"

# Expected result of each element of s3_event_notifications.json, by index. Written out
# by hand from the sample index in s3_event_notifications.md, not computed from the bodies.
SAMPLE_EXPECTED: dict[int, Notification] = {
    0: _ignored("s3:TestEvent"),
    1: _created(
        ObjectRef(
            "prod-central-logs",
            ALB_KEY_1450,
            etag="0f343b0931126a20f133d67c2b018a3b",
            size=88312,
            event_time="2025-10-21T14:55:02.137Z",
        )
    ),
    2: _created(
        ObjectRef(
            "prod-central-logs",
            "AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2025/10/21/"
            "123456789012_CloudTrail_us-east-1_20251021T1455Z_Mu0KsOhtH1ar15ZZ.json.gz",
            etag="d8e8fca2dc0f896fd7cb4cb0031ba249-3",
            size=18874368,
            event_time="2025-10-21T14:56:40.001Z",
        )
    ),
    # A digest file is still an ObjectCreated record; routing by key skips it later.
    3: _created(
        ObjectRef(
            "prod-central-logs",
            "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/10/21/123456789012_"
            "CloudTrail-Digest_us-east-1_org-trail_us-east-1_20251021T150131Z.json.gz",
            etag="a1b2c3d4e5f60718293a4b5c6d7e8f90",
            size=1632,
            event_time="2025-10-21T15:01:33.420Z",
        )
    ),
    4: _created(
        ObjectRef(
            "prod-central-logs",
            "AWSLogs/123456789012/WAFLogs/us-east-1/prod-web-acl/2025/10/21/14/55/"
            "123456789012_waflogs_us-east-1_prod-web-acl_20251021T1455Z_e0ca43b5.log.gz",
            etag="b1946ac92492d2347c6235b4d2611184",
            size=404112,
            event_time="2025-10-21T15:00:11.772Z",
        )
    ),
    5: _created(
        ObjectRef(
            "prod-central-logs",
            "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
            "year=2025/month=10/day=21/123456789012_vpcflowlogs_us-east-1_"
            "fl-0a1b2c3d4e5f67890_20251021T1455Z_fe123456.log.gz",
            etag="7d793037a0760186574b0282f2f435e7",
            size=55120,
            event_time="2025-10-21T15:02:09.010Z",
        )
    ),
    6: _created(
        ObjectRef(
            "team-uploads",
            "uploads/2025/My Report (final)+v2.csv",
            etag="098f6bcd4621d373cade4e832627b4f6",
            size=20480,
            event_time="2025-10-21T15:02:30.555Z",
        )
    ),
    7: _created(
        ObjectRef(
            "team-uploads",
            "レポート/日本 2025.csv",
            etag="5d41402abc4b2a76b9719d911017c592",
            size=1024,
            event_time="2025-10-21T15:02:44.004Z",
        )
    ),
    8: _created(
        ObjectRef(
            "prod-data-lake",
            "curated/2025/10/21/a.json",
            etag="e2fc714c4727ee9395f324cd2e7f331f",
            version_id="3HL4kqtJvjVBH40Nrjfkd",
            size=5120,
            event_time="2025-10-21T15:03:00.700Z",
        )
    ),
    9: _ignored("ObjectRemoved:Delete"),
    10: _ignored("ObjectRemoved:DeleteMarkerCreated"),
    11: _ignored("LifecycleExpiration:Delete"),
    12: _ignored("ObjectRestore:Completed"),
    13: _ignored("s3:TestEvent"),
    14: _created(
        ObjectRef(
            "prod-central-logs",
            ALB_KEY_1455,
            etag="9e107d9d372bb6826bd81d3542a419d6",
            size=91002,
            event_time="2025-10-21T15:00:02.137Z",
        )
    ),
    15: _created(
        ObjectRef(
            "team-uploads",
            "uploads/2025/Q3 summary.csv",
            etag="e4d909c290d0fb1ca068ffaddf22cbd0",
            size=777,
            event_time="2025-10-21T15:04:00.000Z",
        )
    ),
    16: _ignored("s3:TestEvent"),
    17: _created(
        ObjectRef(
            "prod-central-logs",
            "AWSLogs/123456789012/WAFLogs/us-east-1/prod-web-acl/2025/10/21/15/00/"
            "123456789012_waflogs_us-east-1_prod-web-acl_20251021T1500Z_e0ca43b5.log.gz",
            etag="45c48cce2e2d7fbdea1afc51c7c6ad26",
            size=399001,
            event_time="2025-10-21T15:05:11.772Z",
        )
    ),
    18: _created(
        ObjectRef(
            "prod-central-logs",
            ALB_KEY_1450,
            etag="0f343b0931126a20f133d67c2b018a3b",
            size=88312,
            event_time="2025-10-21T14:55:02Z",
        )
    ),
    19: _created(
        ObjectRef(
            "prod-data-lake",
            "raw/2025/10/21/big.parquet",
            etag="d8e8fca2dc0f896fd7cb4cb0031ba249-13",
            version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            size=104857600,
            event_time="2025-10-21T15:06:40Z",
        )
    ),
    20: _created(
        ObjectRef(
            "team-uploads",
            "uploads/2025/Q3 summary.csv",
            etag="e4d909c290d0fb1ca068ffaddf22cbd0",
            size=777,
            event_time="2025-10-21T15:04:00Z",
        )
    ),
    21: _ignored("Object Deleted"),
    22: _ignored("Object Restore Completed"),
}

# The seed's SQS bodies (EXPECTED.md section 1). The seed *deleted* the truncated and the
# badly escaped messages after logging; s3lb leaves them for the queue's redrive policy.
SEED_EXPECTED: dict[str, Notification | str] = {
    "sqs-message.json": _created(
        ObjectRef(
            "mybucket",
            SEED_ALB_KEY,
            etag="0f0c79b67cf091c2228c16640d75ff3b",
            size=14313,
            event_time="2018-07-07T09:35:10.990Z",
        )
    ),
    "sqs-message-encoded-key.json": _created(
        ObjectRef(
            "mybucket",
            "My simple [key]",
            etag="0f0c79b67cf091c2228c16640d75ff3b",
            size=14313,
            event_time="2018-07-07T09:35:10.990Z",
        )
    ),
    "sqs-message-bad-escape.json": UNDECODABLE,
    "sqs-message-multipart-upload.json": _created(
        ObjectRef(
            "mybucket",
            "2019-08-09T17-35-00.000-4EOusK9ws_69koeNqTBf.log",
            etag="1f40ff64a9136f43f8915ed4f6640339-1",
            size=28897,
            event_time="2019-08-09T17:40:00.623Z",
        )
    ),
    "sqs-message-truncated.json": UNDECODABLE,
}


def _samples() -> list[dict[str, Any]]:
    return json.loads(SAMPLES.read_text(encoding="utf-8"))


def test_every_documented_sample_has_an_expectation() -> None:
    """The table above covers the sample file exactly, and the bodies are the real ones."""
    samples = _samples()
    assert set(SAMPLE_EXPECTED) == set(range(len(samples)))
    for msg in samples:
        assert hashlib.md5(msg["Body"].encode()).hexdigest() == msg["MD5OfBody"]
    assert {p.name for p in SEED.glob("sqs-*.json")} == set(SEED_EXPECTED)


@pytest.mark.parametrize("index", sorted(SAMPLE_EXPECTED))
def test_documented_sample_decodes_to_its_expected_result(index: int) -> None:
    """Direct, SNS (raw on/off) and EventBridge bodies give the documented objects."""
    msg = _samples()[index]
    assert decode_notification(msg["Body"]) == SAMPLE_EXPECTED[index], msg["_case"]


@pytest.mark.parametrize("name", sorted(SEED_EXPECTED))
def test_seed_body_decodes_to_its_expected_result(name: str) -> None:
    """The seed bodies, with their leading newline and tabs, decode as EXPECTED.md says."""
    body = (SEED / name).read_text(encoding="utf-8")
    expected = SEED_EXPECTED[name]
    if expected == UNDECODABLE:
        with pytest.raises(UndecodableMessage) as info:
            decode_notification(body)
        assert info.value.reason
    else:
        assert decode_notification(body) == expected


def test_bad_escape_reason_names_the_key() -> None:
    """The malformed %-escape is reported, not guessed around."""
    body = (SEED / "sqs-message-bad-escape.json").read_text(encoding="utf-8")
    with pytest.raises(UndecodableMessage, match="malformed %-escape") as info:
        decode_notification(body)
    assert "My+simple+%5key%5D" in info.value.reason


def _record(name: str = "ObjectCreated:Put", key: str = "k", **obj: Any) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": "2025-01-01T00:00:00.000Z",
        "eventName": name,
        "s3": {"bucket": {"name": "b"}, "object": {"key": key, **obj}},
    }


def _body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def _sns(message: Any, typ: str = "Notification") -> str:
    return json.dumps({"Type": typ, "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": message})


def test_mixed_message_yields_objects_and_ignored_reasons_in_order() -> None:
    """A message with created and removed records keeps both, in record order."""
    body = _body(
        _record(key="a", size=1, eTag="e1"),
        _record("ObjectRemoved:Delete", key="gone"),
        _record("ObjectCreated:Copy", key="b+c", size=2, eTag="e2", versionId="v"),
    )
    assert decode_notification(body) == Notification(
        objects=(
            ObjectRef("b", "a", etag="e1", size=1, event_time="2025-01-01T00:00:00.000Z"),
            ObjectRef(
                "b", "b c", etag="e2", version_id="v", size=2, event_time="2025-01-01T00:00:00.000Z"
            ),
        ),
        ignored=("ObjectRemoved:Delete",),
    )


def test_quoted_etag_is_unquoted_and_missing_fields_default() -> None:
    """ETags lose their quotes; absent size/eTag/versionId become None/''."""
    (ref,) = decode_notification(_body(_record(eTag='"abc"'))).objects
    assert (ref.etag, ref.size, ref.version_id) == ("abc", None, "")
    (ref,) = decode_notification(_body(_record(versionId=None))).objects
    assert (ref.etag, ref.version_id) == ("", "")


def test_sns_subscription_confirmation_is_ignored() -> None:
    """A SubscriptionConfirmation is not an event: ignored, so the message is deleted."""
    body = json.dumps(
        {
            "Type": "SubscriptionConfirmation",
            "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": "You have chosen to subscribe...",
            "SubscribeURL": "https://sns.example/",
            "Token": "t",
        }
    )
    assert decode_notification(body) == _ignored("SubscriptionConfirmation")


def test_sns_wrapped_eventbridge_event_is_unwrapped() -> None:
    """An EventBridge event forwarded through SNS decodes like a direct one."""
    event = _samples()[18]["Body"]
    assert decode_notification(_sns(event)) == SAMPLE_EXPECTED[18]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "not JSON"),
        ("   \n\t", "not JSON"),
        ("not json", "not JSON"),
        ('{"Records": [', "not JSON"),
        ('["Records"]', "not an object"),
        ('"s3:TestEvent"', "not an object"),
        ("{}", "unknown message shape"),
        ('{"foo": 1}', "unknown message shape"),
        ('{"source": "aws.ec2", "detail": {}}', "unknown message shape"),
        ('{"Records": []}', "Records"),
        ('{"Records": {}}', "Records"),
        ('{"Records": [1]}', "Records[0]"),
        (_sns("not json"), "SNS Message is not JSON"),
        (_sns({"Records": []}), "no string Message"),
        (_sns(_body(_record()), typ="Weird"), "SNS message Type"),
        (_sns(_sns(_body(_record()))), "unknown message shape"),
        (_body({**_record(), "eventSource": "aws:sqs"}), "eventSource"),
        (_body({**_record(), "eventVersion": "3.0"}), "eventVersion"),
        (_body({**_record(), "eventName": None}), "eventName"),
        (_body({**_record(), "s3": {"object": {"key": "k"}}}), "bucket"),
        (_body({**_record(), "s3": {"bucket": {"name": ""}, "object": {"key": "k"}}}), "bucket"),
        (_body({**_record(), "s3": {"bucket": {"name": "b"}}}), "s3.object"),
        (_body(_record(key="")), "key"),
        (_body(_record(key=None)), "key"),
        (_body(_record(key="a%zz")), "malformed %-escape"),
        (_body(_record(key="a%2")), "malformed %-escape"),
        (_body(_record(key="%FF%FE")), "not UTF-8"),
        (_body(_record(size="12")), "size"),
        (_body(_record(size=-1)), "size"),
        (_body(_record(size=True)), "size"),
        (_body(_record(eTag=5)), "etag"),
        (_body(_record(key="bad%"), _record(key=None)), "no record can be decoded"),
        (_body(_record(key="bad%"), 7), "Records[1] is not an object"),
        ('{"source": "aws.s3", "detail": {}}', "detail-type"),
        ('{"source": "aws.s3", "detail-type": "Object Created", "detail": {}}', "detail.object"),
        (
            '{"source": "aws.s3", "detail-type": "Object Created",'
            ' "detail": {"bucket": {"name": "b"}, "object": {"key": "%"}}}',
            "malformed %-escape",
        ),
        ("[" * 1000 + "]" * 1000, "nested too deeply"),
        ('{"a":' * 1000 + "1" + "}" * 1000, "nested too deeply"),
        ("[" * 100_000, "nested too deeply"),
        (_sns("[" * 1000 + "]" * 1000), "SNS Message is JSON nested too deeply"),
    ],
)
def test_undecodable_body_raises_with_a_reason(body: str, reason: str) -> None:
    """Anything that is not a known, well-formed notification is left for the DLQ."""
    with pytest.raises(UndecodableMessage) as info:
        decode_notification(body)
    assert reason in info.value.reason


def test_one_bad_record_costs_only_itself_and_is_returned_with_its_json() -> None:
    """The good records of a message with a bad one are delivered; the bad one comes
    back as a failure (index, reason, the record as JSON) for the dead-letter store."""
    bad = _record(key="bad%zz")
    body = _body(_record(key="a", eTag="e1"), bad, _record("ObjectRemoved:Delete"), 7)
    result = decode_notification(body)
    assert [ref.key for ref in result.objects] == ["a"]
    assert result.ignored == ("ObjectRemoved:Delete",)
    assert [(f.index, json.loads(f.record)) for f in result.failed] == [(1, bad), (3, 7)]
    assert "Records[1]" in result.failed[0].reason and "malformed" in result.failed[0].reason
    assert result.failed[1].reason == "Records[3] is not an object"
    assert isinstance(result.failed[0], RecordFailure)


def test_a_message_whose_only_good_records_are_ignored_events_still_decodes() -> None:
    """A decodable record (even one that announces nothing) keeps the message decodable:
    its bad record is returned, the message can be deleted."""
    result = decode_notification(_body(_record("ObjectRemoved:Delete"), _record(key=None)))
    assert result.objects == () and result.ignored == ("ObjectRemoved:Delete",)
    assert [f.index for f in result.failed] == [1]


def test_ignored_records_need_no_object_fields() -> None:
    """A delete record without size or eTag (or even a key) is still just ignored."""
    record = {**_record("ObjectRemoved:Delete"), "s3": {}}
    assert decode_notification(_body(record)) == _ignored("ObjectRemoved:Delete")


def test_bytes_body_is_accepted() -> None:
    """A bytes body decodes like its text."""
    body = _body(_record(key="x+y", size=3))
    assert decode_notification(body.encode()) == decode_notification(body)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("a+b", "a b"),
        ("a%2Bb", "a+b"),
        ("100%25", "100%"),
        ("%3D%3a", "=:"),
        ("x/y/z", "x/y/z"),
        ("%E6%97%A5", "日"),
        ("日+本", "日 本"),
    ],
)
def test_decode_key_examples(raw: str, key: str) -> None:
    """Form decoding: + is a space, %XX are UTF-8 bytes, / stays."""
    assert decode_key(raw) == key


@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1))
def test_decode_key_inverts_s3_encoding(key: str) -> None:
    """Any key S3 encodes (form encoding, '/' left alone) decodes back to itself."""
    assert decode_key(quote_plus(key, safe="/")) == key


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["Records", "s3", "bucket", "object", "name", "key", "eventName", "eventSource",
             "Type", "TopicArn", "Message", "source", "detail", "detail-type", "size", "x"]
        ),
        inner,
        max_size=4,
    ),
    max_leaves=12,
)  # fmt: skip


@given(_json_values)
def test_decoder_only_ever_raises_undecodable_message(value: Any) -> None:
    """Arbitrary JSON never crashes the decoder with anything but UndecodableMessage."""
    try:
        result = decode_notification(json.dumps(value))
    except UndecodableMessage as exc:
        assert exc.reason
    else:
        assert isinstance(result, Notification)
        assert result.objects or result.ignored
