"""The HTTP client of a cluster output: authentication, TLS and SigV4.

Shared by the bulk sink, ``s3lb setup`` and ``s3lb replay-dead-letter`` so that all
three reach the cluster the same way:

- ``username``/``password`` (Basic) or ``api_key`` (``ApiKey``; beats' ``id:key`` form
  is encoded here);
- ``aws_auth``: every request signed with SigV4 by aws-requests-auth, credentials from
  botocore's chain (environment, shared files, SSO, container and instance roles),
  refreshed off the event loop when they expire;
- ``ssl``: extra CAs, client certificate, and ``verification_mode``.
"""

from __future__ import annotations

import base64
import os
import ssl
import warnings
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.credentials
import botocore.exceptions
import botocore.session
import certifi
import httpx
import trio
from aws_requests_auth.aws_auth import AWSRequestsAuth

from s3lb.config import AwsAuth, ElasticsearchOutput, Ssl
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.sinks.elasticsearch.redact import redact_url
from s3lb.telemetry import Telemetry

__all__ = [
    "Cluster",
    "SigV4Auth",
    "open_client",
    "redact_url",
    "ssl_context",
]


class Cluster:
    """The hosts of an output, in order: a refused connection or a timeout fails over
    to the next host, and the next request starts from there.

    ``timeout`` bounds each whole request (sending, waiting, reading the answer), not
    only each read: a proxy trickling a byte at a time cannot hold a worker forever.
    """

    def __init__(
        self,
        config: ElasticsearchOutput,
        transport: httpx.AsyncBaseTransport | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.hosts = config.host_urls()
        self.client = open_client(config, transport)
        self.timeout = config.timeout
        self.telemetry = telemetry
        self._current = 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send ``method path`` to the current host, failing over; any answer is returned.

        Raises:
            SinkUnavailable: no host answered.
        """
        last = ""
        for _ in range(len(self.hosts)):
            url = self.hosts[self._current] + path
            with trio.move_on_after(self.timeout):
                try:
                    return await self.client.request(
                        method, url, content=content, json=json, headers=headers
                    )
                except httpx.HTTPError as exc:
                    last = f"{method} {redact_url(url)}: {_describe(exc)}"
                    self.fail_over()
                    continue
            last = f"{method} {redact_url(url)}: no complete answer within {self.timeout:g}s"
            self.fail_over()
            if self.telemetry is not None:
                self.telemetry.count("cluster_request_timeouts")
                self.telemetry.warning(
                    "cluster request timed out: cut off, failing over", reason=last
                )
        raise SinkUnavailable(last)

    def fail_over(self) -> None:
        """Send the next request to the next host."""
        self._current = (self._current + 1) % len(self.hosts)

    async def aclose(self) -> None:
        """Close the connections."""
        await self.client.aclose()

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _describe(exc: BaseException) -> str:
    """``ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] …``: the first cause that says
    something (httpx's own message is sometimes empty)."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    while not str(exc) and cause is not None:
        exc, cause = cause, cause.__cause__ or cause.__context__
        text = f"{text} {type(exc).__name__}: {exc}"
    return text


def open_client(
    config: ElasticsearchOutput, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with ``config``'s credentials, TLS settings and timeout.

    Raises:
        ConfigError: a CA or certificate file cannot be read.
    """
    headers = {**config.headers}
    auth: httpx.Auth | None = None
    if config.aws_auth is not None:
        auth = SigV4Auth(config.aws_auth)
    elif config.api_key:
        key = config.api_key
        if ":" in key:  # beats' id:api_key form; the header wants it base64-encoded
            key = base64.b64encode(key.encode()).decode()
        headers["Authorization"] = "ApiKey " + key
    elif config.username:
        token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
        headers["Authorization"] = "Basic " + token
    https = any(url.startswith("https://") for url in config.host_urls())
    return httpx.AsyncClient(
        headers=headers,
        auth=auth,
        timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout)),
        verify=ssl_context(config.ssl) if https else True,
        transport=transport,
    )


def ssl_context(settings: Ssl) -> ssl.SSLContext:
    """The TLS context for ``settings``: verification on unless ``verification_mode: none``.

    Raises:
        ConfigError: a CA, certificate or key cannot be loaded.
    """
    where = "output.elasticsearch.ssl"
    try:
        context = ssl.create_default_context(cafile=certifi.where())
        for ca in settings.certificate_authorities:
            if ca.lstrip().startswith("-----BEGIN"):
                context.load_verify_locations(cadata=ca)
            else:
                context.load_verify_locations(cafile=str(Path(ca).expanduser()))
        if settings.certificate:
            context.load_cert_chain(
                settings.certificate, settings.key or None, settings.key_passphrase or None
            )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load a certificate: {exc}", where) from None
    if settings.verification_mode == "certificate":
        context.check_hostname = False
    elif settings.verification_mode == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True, slots=True)
class _RequestView:
    """What aws-requests-auth reads from a ``requests`` request."""

    method: str
    url: str
    body: bytes


class SigV4Auth(httpx.Auth):
    """httpx authentication that signs each request with AWS SigV4 (aws-requests-auth)."""

    requires_request_body = True

    def __init__(self, settings: AwsAuth) -> None:
        self._session = botocore.session.get_session()
        if settings.profile:
            self._session.set_config_variable("profile", settings.profile)
        # The same order as the queues' region: the setting, AWS_REGION (what the SDKs and
        # CLI v2 read), then botocore's own (AWS_DEFAULT_REGION, the profile's region).
        self.region = (
            settings.region
            or os.environ.get("AWS_REGION", "")
            or self._session.get_config_variable("region")
            or ""
        )
        if not self.region:
            raise ConfigError(
                "no region: set aws_auth.region, AWS_REGION or AWS_DEFAULT_REGION",
                "output.elasticsearch.aws_auth",
            )
        self.service = settings.service
        self._credentials: botocore.credentials.Credentials | None = None

    def sign(self, request: httpx.Request, creds: botocore.credentials.ReadOnlyCredentials) -> None:
        """Add ``Authorization``, ``x-amz-date``, ``x-amz-content-sha256`` (and the
        session token) to ``request``, signed for its method, URL, host and body."""
        signer = AWSRequestsAuth(
            creds.access_key,
            creds.secret_key,
            request.headers["host"],
            self.region,
            self.service,
            creds.token,
        )
        view = _RequestView(request.method, str(request.url), request.content)
        with warnings.catch_warnings():
            # It calls datetime.utcnow(), deprecated since Python 3.12.
            warnings.simplefilter("ignore", DeprecationWarning)
            headers = signer.get_aws_request_headers(
                view, creds.access_key, creds.secret_key, creds.token
            )
        request.headers.update(headers)

    def _resolve(self) -> botocore.credentials.Credentials:
        if self._credentials is None:
            self._credentials = self._session.get_credentials()
            if self._credentials is None:
                raise SinkUnavailable(
                    "aws_auth: no AWS credentials found (environment, shared files, SSO, "
                    "container or instance role)"
                )
        return self._credentials

    def _frozen(self) -> botocore.credentials.ReadOnlyCredentials:
        # A failed lookup or refresh (STS, instance metadata) is an outage to retry, not
        # a crash: nothing is acknowledged meanwhile.
        try:
            return self._resolve().get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            raise SinkUnavailable(f"aws_auth: cannot get AWS credentials: {exc}") from None

    def _needs_thread(self) -> bool:
        creds = self._credentials
        if creds is None:
            return True  # the chain may ask the instance metadata service
        return isinstance(creds, botocore.credentials.RefreshableCredentials) and bool(
            creds.refresh_needed()
        )

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Sign ``request`` (blocking credential lookups allowed)."""
        self.sign(request, self._frozen())
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sign ``request``; credential lookups and refreshes run in a worker thread."""
        if self._needs_thread():
            creds = await trio.to_thread.run_sync(self._frozen)
        else:
            creds = self._frozen()
        self.sign(request, creds)
        yield request
