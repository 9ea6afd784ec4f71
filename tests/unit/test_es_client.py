"""How the output reaches the cluster: SigV4 signatures equal botocore's, TLS is
verified unless told otherwise, API keys and basic auth, the new options' checks."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from s3lb.config import AwsAuth, ElasticsearchOutput, loads
from s3lb.deadletter import DeadLetter
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.sinks.elasticsearch.client import Cluster, SigV4Auth, open_client
from s3lb.sinks.elasticsearch.sink import ElasticsearchSink
from s3lb.telemetry import Telemetry
from tests.fakes.fake_es import FakeEs
from tests.unit.test_es_sink import CapturingTransport, make_items


def output(**settings: object) -> ElasticsearchOutput:
    config, _ = loads("output.elasticsearch: " + json.dumps(settings))
    assert config.output.elasticsearch is not None
    return config.output.elasticsearch


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Credentials from the environment only: no shared files, no instance metadata."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    yield


@pytest.mark.parametrize("service", ["es", "aoss"])
@pytest.mark.parametrize("token", ["", "FwoGZXIvYXdzEXAMPLETOKEN"])
def test_sigv4_headers_equal_botocores_signer_for_the_same_request(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, service: str, token: str
) -> None:
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    body = b'{"create":{"_index":"alb-2016.08.10","_id":"x"}}\n{"a":1}\n'
    request = httpx.Request(
        "POST",
        "https://search-logs-abc.eu-west-1.es.amazonaws.com/_bulk?pipeline=geo",
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    auth = SigV4Auth(AwsAuth(region="eu-west-1", service=service))  # type: ignore[arg-type]
    signed = next(auth.sync_auth_flow(request))

    # botocore signs the same request at the same instant.
    when = dt.datetime.strptime(signed.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_a, **_k: when)
    reference = botocore.awsrequest.AWSRequest(
        method="POST", url=str(request.url), data=body, headers={"host": request.headers["host"]}
    )
    creds = botocore.credentials.Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token or None
    )
    botocore.auth.SigV4Auth(creds, service, "eu-west-1").add_auth(reference)

    assert signed.headers["authorization"] == reference.headers["Authorization"]
    assert signed.headers["x-amz-date"] == reference.headers["X-Amz-Date"]
    assert f"/eu-west-1/{service}/aws4_request" in signed.headers["authorization"]
    assert signed.headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    if token:
        assert signed.headers["x-amz-security-token"] == reference.headers["X-Amz-Security-Token"]
    else:
        assert "x-amz-security-token" not in signed.headers


async def test_the_sink_signs_every_bulk_request_with_the_chain_credentials(
    autojump_clock: trio.testing.MockClock, aws_env: None, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time, flavor="opensearch")
    transport = CapturingTransport(fake)
    config = output(
        hosts=["https://search-x.us-east-1.es.amazonaws.com"],
        aws_auth={"region": "us-east-1"},
        compression_level=1,
    )
    sink = ElasticsearchSink(config, Telemetry(), DeadLetter(tmp_path / "dl"), transport)
    tracker, items = make_items(3)
    await sink.deliver(items)
    assert tracker.counts == {"indexed": 3}
    (request,) = transport.requests
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    # The signed payload is the body as sent: gzipped.
    assert request.headers["x-amz-content-sha256"] == hashlib.sha256(request.content).hexdigest()


def test_api_keys_in_beats_id_colon_key_form_are_encoded_and_basic_auth_is_sent() -> None:
    client = open_client(output(api_key="my-id:my-key"))
    assert client.headers["authorization"] == "ApiKey " + base64.b64encode(b"my-id:my-key").decode()
    client = open_client(output(api_key="ZW5jb2RlZA=="))
    assert client.headers["authorization"] == "ApiKey ZW5jb2RlZA=="
    client = open_client(output(username="s3lb", password="secret"))
    assert client.headers["authorization"] == "Basic " + base64.b64encode(b"s3lb:secret").decode()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"compression_level": 10}, "compression_level"),
        ({"bulk_max_bytes": 100}, "bulk_max_bytes"),
        ({"data_stream": True, "index": "logs-%{+yyyy.MM.dd}"}, "data_stream"),
        ({"aws_auth": {"region": "x"}, "username": "u"}, "aws_auth"),
        ({"aws_auth": {"service": "lambda"}}, "service"),
        ({"document_id": "hash"}, "document_id"),
        ({"ssl": {"verification_mode": "maybe"}}, "verification_mode"),
        ({"dead_letter_index": "dl-%{+yyyy}"}, "dead_letter_index"),
    ],
)
def test_invalid_output_options_are_configuration_errors(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        output(**settings)


def test_the_new_options_have_backward_compatible_defaults() -> None:
    config = output()
    assert config.bulk_max_bytes == 10 * 1024 * 1024
    assert config.compression_level == 0 and config.pipeline == ""
    assert config.document_id == "position" and not config.data_stream
    assert config.ssl.verification_mode == "full" and config.aws_auth is None
    assert config.dead_letter_index == ""


# -- TLS -----------------------------------------------------------------------------


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    sans: list[x509.GeneralName],
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and one for another name."""
    root = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("s3lb test CA", ca_key, None, [], ca=True)
    paths = {"ca": root / "ca.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    import ipaddress

    for label, san in (
        ("good", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
        ("wrong-name", x509.DNSName("other.example")),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(label, key, (ca.subject, ca_key), [san], ca=False)
        path = root / f"{label}.pem"
        path.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths[label] = path
    return paths


async def _answer(stream: trio.SSLStream[trio.SocketStream]) -> None:
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            if not chunk:
                return
            data += chunk
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: 2\r\nconnection: close\r\n\r\n{}"
        )
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client refused our certificate: expected in some tests


async def _serve_tls(nursery: trio.Nursery, certificate: Path) -> int:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate)
    listeners = await nursery.start(trio.serve_ssl_over_tcp, _answer, 0, context)
    return int(listeners[0].transport_listener.socket.getsockname()[1])


@pytest.mark.parametrize(
    ("server", "ssl_settings", "ok"),
    [
        ("good", {}, False),  # verification is on by default: an unknown CA fails
        ("good", {"certificate_authorities": ["{ca}"]}, True),
        ("good", {"certificate_authorities": ["{ca_pem}"]}, True),  # inline PEM
        ("wrong-name", {"certificate_authorities": ["{ca}"]}, False),
        (
            "wrong-name",
            {"certificate_authorities": ["{ca}"], "verification_mode": "certificate"},
            True,
        ),
        ("good", {"verification_mode": "none"}, True),
    ],
)
async def test_tls_is_verified_unless_the_verification_mode_says_otherwise(
    pki: dict[str, Path], server: str, ssl_settings: dict[str, object], ok: bool
) -> None:
    text = json.dumps(ssl_settings)
    text = text.replace('"{ca}"', json.dumps(str(pki["ca"])))
    text = text.replace('"{ca_pem}"', json.dumps(pki["ca"].read_text()))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve_tls(nursery, pki[server])
            config = output(hosts=[f"https://127.0.0.1:{port}"], ssl=json.loads(text))
            async with Cluster(config) as cluster:
                if ok:
                    assert (await cluster.request("GET", "/")).status_code == 200
                else:
                    with pytest.raises(SinkUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
                        await cluster.request("GET", "/")
            nursery.cancel_scope.cancel()


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    config = output(
        hosts=["https://es:9200"], ssl={"certificate_authorities": [str(tmp_path / "no.pem")]}
    )
    with pytest.raises(ConfigError, match="ssl"):
        open_client(config)


async def test_missing_aws_credentials_are_an_outage_to_retry_not_a_crash(
    autojump_clock: trio.testing.MockClock,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    fake = FakeEs(clock=trio.current_time)
    config = output(
        hosts=["https://search-x.eu-west-1.es.amazonaws.com"], aws_auth={"region": "eu-west-1"}
    )
    sink = ElasticsearchSink(config, Telemetry(), DeadLetter(tmp_path / "dl"), fake.transport())
    tracker, items = make_items(2)
    with trio.move_on_after(120):
        await sink.deliver(items)
    assert tracker.settled == 0 and fake.requests == []
    assert sink.telemetry.counters["bulk_failures"] >= 1


def test_sigv4_takes_its_region_from_aws_region_as_the_error_message_says(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_REGION alone (what the SDKs and the CLI v2 read) is enough, as for the queues."""
    with pytest.raises(ConfigError, match="AWS_REGION"):
        SigV4Auth(AwsAuth(service="es"))  # type: ignore[arg-type]
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert SigV4Auth(AwsAuth(service="es")).region == "eu-central-1"  # type: ignore[arg-type]
