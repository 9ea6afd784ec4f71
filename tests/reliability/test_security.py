"""Security checks: secrets never leak, TLS is verified by default, state is private.

- Sentinel secrets (the AWS secret key, the cluster password, an API key) never appear
  in the daemon's log (at debug level, through outages, rejects and bad input), in
  ``s3lb state`` (text and JSON), in dead-letter files, or in ``s3lb check``'s messages.
- A cluster with a self-signed certificate is refused unless its certificate is
  configured as trusted.
- State files are created 0600 in 0700 directories whatever the umask.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import secrets
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trio.testing import MockClock

from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.reliability.corpus import alb_key, alb_lines, custom_object, generate
from tests.reliability.harness import Rig, dead_letters
from tests.reliability.process import daemon_config, notify, upload
from tests.reliability.proxy import FaultProxy
from tests.support.daemon import S3lbProcess
from tests.support.helpers import s3lb_cli, wait_until


def _sentinel(kind: str) -> str:
    return f"SENTINEL{kind}{secrets.token_hex(8)}"


def _forms(secret: str) -> list[str]:
    """The secret and the encodings a leak could take (an Authorization header)."""
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"elastic:{secret}".encode()).decode(),
        base64.b64encode(f"s3lb-key:{secret}".encode()).decode(),
    ]


def _cli(*args: str, cwd: Path) -> str:
    done = s3lb_cli(*args, cwd=cwd)
    return done.stdout + done.stderr


def _tree(path: Path) -> str:
    return "".join(
        p.read_bytes().decode("utf-8", "replace") for p in sorted(path.rglob("*")) if p.is_file()
    )


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["password", "api_key"])
def test_sentinel_secrets_never_appear_in_logs_state_dead_letters_or_errors(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, auth: str
) -> None:
    """The AWS secret key and the cluster password (or API key) are in use for a whole
    run at debug level, through a 401 outage, a mapping reject and a poison message;
    none of them, nor their base64 forms, shows up anywhere s3lb writes or prints.
    The run also creates its state 0600 in 0700 directories under umask 0."""
    aws_secret, cluster_secret = _sentinel("AWS"), _sentinel("ES")
    corpus = generate(31, formats=["alb"], objects=2, records=(5, 10))
    queue = aws.queue(VisibilityTimeout=2)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    credentials = (
        {"username": "elastic", "password": cluster_secret}
        if auth == "password"
        else {"api_key": f"s3lb-key:{cluster_secret}"}
    )
    state_dir = tmp_path / "state"
    config = daemon_config(state_dir, [queue], fake_es.url, es=credentials)
    fake_es.down = "401"
    first = corpus.objects[0]
    fake_es.item_plan = {first.doc_id(2): 400}  # a mapping reject: a dead-letter entry
    with S3lbProcess(
        tmp_path,
        config,
        {"AWS_SECRET_ACCESS_KEY": aws_secret},
        global_args=["--log-level", "debug"],
        umask=0,
    ) as runner:
        runner.start(wait=True)
        aws.send(queue, "not json at all")
        notify(aws, queue, corpus.objects)
        wait_until(lambda: "HTTP 401" in runner.log, 30, "the 401 outage")
        fake_es.down = None
        wait_until(lambda: len(fake_es.docs) == len(corpus.expected_ids()) - 1, 30, "delivery")
        assert runner.terminate() == 0
    assert dead_letters(state_dir), "the reject was not dead-lettered"
    fake_es.down = "401"
    check = _cli("check", "-c", str(runner.config_path), cwd=tmp_path)
    assert "cluster" in check
    outputs = {
        "log": runner.logs,
        "state": _cli("state", "-c", str(runner.config_path), cwd=tmp_path),
        "state --json": _cli("state", "-c", str(runner.config_path), "--json", cwd=tmp_path),
        "dead letters": _tree(state_dir / "dead-letter"),
        "check": check,
    }
    for secret in (aws_secret, cluster_secret):
        for where, text in outputs.items():
            for form in _forms(secret):
                assert form not in text, f"a secret appears in {where}"
    for directory in (state_dir, state_dir / "checkpoint", state_dir / "dead-letter"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = [*(state_dir / "checkpoint").iterdir(), *(state_dir / "dead-letter").iterdir()]
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files


async def test_a_password_inside_a_host_url_is_never_logged(
    autojump_clock: MockClock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """hosts: ``http://elastic:SECRET@host``: outages are logged without the secret."""
    secret = _sentinel("URL")
    obj = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 3)) + "\n").encode())
    rig.s3.upload([obj])
    rig.send([obj])
    rig.es.down = "401"

    async def recover(r: Rig) -> None:
        import trio

        await trio.sleep(30)
        r.es.down = None

    with caplog.at_level(logging.DEBUG, logger="s3lb"):
        await rig.run(
            rig.config(es_hosts=[f"http://elastic:{secret}@es.rel.invalid:9200"]),
            rig.queue_empty,
            during=recover,
        )
    text = "\n".join(f"{r.getMessage()} {r.__dict__.get('context')}" for r in caplog.records)
    assert "HTTP 401" in text
    assert secret not in text


def _self_signed(path: Path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 at ``path`` (PEM, with its key); returns
    the server context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3lb self-signed")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(path)
    return context


@pytest.mark.slow
def test_a_self_signed_cluster_is_refused_unless_its_certificate_is_trusted(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """TLS verification is on by default: against a self-signed cluster nothing is sent
    (CERTIFICATE_VERIFY_FAILED, an outage: no delete, no reject); with the certificate
    in ``ssl.certificate_authorities`` the same run delivers everything (I1, I2)."""
    pem = tmp_path / "cluster.pem"
    context = _self_signed(pem)
    corpus = generate(32, formats=["alb"], objects=2, records=(5, 10))
    queue = aws.queue(VisibilityTimeout=2)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    notify(aws, queue, corpus.objects)
    host, port = fake_es.url.removeprefix("http://").split(":")
    state_dir = tmp_path / "state"
    with (
        FaultProxy((host, int(port)), tls=context) as proxy,
        S3lbProcess(tmp_path, daemon_config(state_dir, [queue], proxy.url)) as runner,
    ):
        runner.start(wait=True)
        wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in runner.log, 30, "the refusal")
        assert runner.terminate() == 0
        assert fake_es.docs == {} and sum(aws.counts(queue)) == 2
        assert not (state_dir / "dead-letter").exists()
        trusted = {"ssl": {"certificate_authorities": [str(pem)]}}
        runner.config_path.write_text(daemon_config(state_dir, [queue], proxy.url, es=trusted))
        runner.start(wait=True)
        wait_until(lambda: aws.counts(queue) == (0, 0), 30, "delivery over verified TLS")
        assert runner.terminate() == 0
    assert {i for _, i in fake_es.docs} == corpus.expected_ids()
    assert proxy.handshake_failures > 0


class _EchoingProxy:
    """An HTTP endpoint answering every request 401 with the request's headers in the
    body, as some proxies' error pages do."""

    def __init__(self) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                echoed = "".join(f"{k}: {v}\n" for k, v in self.headers.items())
                body = f"401 Unauthorized\n{echoed}Cookie: session=abc\n".encode()
                self.send_response(401)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("auth", ["password", "api_key"])
def test_a_401_that_echoes_the_request_headers_is_reported_without_them(
    tmp_path: Path, auth: str
) -> None:
    """Issue 16.5: ``s3lb setup`` printed the whole 401 body, Authorization and all."""
    secret = _sentinel("ES")
    credentials = (
        f"  username: elastic\n  password: {secret}\n"
        if auth == "password"
        else f"  api_key: s3lb-key:{secret}\n"
    )
    proxy = _EchoingProxy()
    try:
        (tmp_path / "s3lb.yml").write_text(
            "s3lb:\n  state_dir: ./state\n  inputs: []\n"
            f"output.elasticsearch:\n  hosts: [{proxy.url!r}]\n  index: logs\n"
            f"  dead_letter_index: s3lb-dead\n{credentials}"
        )
        setup = _cli("setup", "-c", "s3lb.yml", cwd=tmp_path)
        replay = _cli("replay-dead-letter", "-c", "s3lb.yml", "--timeout", "2s", cwd=tmp_path)
    finally:
        proxy.close()
    assert "HTTP 401" in setup and "HTTP 401" in replay
    for output in (setup, replay):
        for form in _forms(secret):
            assert form not in output
        assert "session=abc" not in output
