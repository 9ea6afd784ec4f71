"""s3lb's SigV4 signer gives botocore's signature for the same request, time and
credentials (S3 and SQS, session tokens, odd keys, queries), signing key cache or not."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3lb.aws.sigv4 import Signer

NOW = dt.datetime(2026, 12, 4, 17, 5, 9, tzinfo=dt.UTC)


def botocore_headers(
    method: str,
    url: str,
    service: str,
    region: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    creds = botocore.credentials.ReadOnlyCredentials("AKIDEXAMPLE", "secret/Key+1", token)
    request = botocore.awsrequest.AWSRequest(method=method, url=url, headers=headers, data=body)
    signer = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    signer(creds, service, region).add_auth(request)
    return dict(request.headers.items())


def ours(
    signer: Signer,
    method: str,
    url: str,
    service: str,
    region: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
) -> dict[str, str]:
    return signer.sign(
        method,
        url,
        service=service,
        region=region,
        access_key="AKIDEXAMPLE",
        secret_key="secret/Key+1",
        token=token,
        now=NOW,
        headers=headers,
        body=body,
    )


CASES = [
    ("GET", "https://b.s3.eu-west-1.amazonaws.com/AWSLogs/1/x.log.gz", "s3", "eu-west-1", {}, b""),
    (
        "GET",
        "http://127.0.0.1:5000/bucket/" + quote("a b/ü+%/~x.gz", safe="/~") + "?versionId=3%2Fx",
        "s3",
        "us-east-1",
        {"Range": "bytes=100-", "If-Match": '"abc"'},
        b"",
    ),
    (
        "GET",
        "https://s3.amazonaws.com/b/?list-type=2&max-keys=1000&prefix=a%2Fb&encoding-type=url",
        "s3",
        "us-east-1",
        {},
        b"",
    ),
    (
        "POST",
        "https://sqs.eu-west-1.amazonaws.com/",
        "sqs",
        "eu-west-1",
        {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ReceiveMessage"},
        b'{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/1/q","MaxNumberOfMessages":10}',
    ),
    ("POST", "http://localhost:4566", "sqs", "us-east-1", {"User-Agent": "x  y"}, b"{}"),
]


@pytest.mark.parametrize("token", [None, "session//token=="])
@pytest.mark.parametrize(("method", "url", "service", "region", "headers", "body"), CASES)
def test_signatures_are_botocores(
    method: str,
    url: str,
    service: str,
    region: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = botocore_headers(method, url, service, region, headers, body, token, monkeypatch)
    signer = Signer()
    for _ in range(2):  # the second time with the cached signing key
        assert ours(signer, method, url, service, region, headers, body, token) == expected


@settings(max_examples=60, deadline=None)
@given(
    key=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1),
    value=st.text(st.characters(codec="ascii", min_codepoint=32, max_codepoint=126)),
    body=st.binary(max_size=64),
)
def test_any_key_header_or_body_signs_as_botocore_does(key: str, value: str, body: bytes) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        url = "https://bucket.s3.amazonaws.com/" + quote(key, safe="/~")
        headers = {"If-Match": value}
        expected = botocore_headers("GET", url, "s3", "us-east-1", headers, body, None, monkeypatch)
        assert ours(Signer(), "GET", url, "s3", "us-east-1", headers, body, None) == expected
        sqs = "https://sqs.us-east-1.amazonaws.com/" + quote(key, safe="/~")
        expected = botocore_headers("POST", sqs, "sqs", "us-east-1", {}, body, "t", monkeypatch)
        assert ours(Signer(), "POST", sqs, "sqs", "us-east-1", {}, body, "t") == expected
