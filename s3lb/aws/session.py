"""Credentials, regions, endpoints and SigV4 signing.

botocore provides the standard credential chain (environment, shared files, SSO,
container and instance roles, refreshed when they expire) and endpoint resolution
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_SQS``, ``AWS_ENDPOINT_URL_S3``, the config
file); requests are signed by :mod:`s3lb.aws.sigv4` (botocore's signatures, a fifth of
its CPU). The HTTP requests themselves go through one shared ``httpx.AsyncClient``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import botocore.credentials
import botocore.session
import trio

from s3lb.aws.sigv4 import Signer
from s3lb.errors import ConfigError

__all__ = ["AwsSession", "region_from_queue_url"]

_SQS_HOST = re.compile(
    r"^(?:sqs\.)?([a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d)\.(?:queue\.)?amazonaws\.com"
)


def region_from_queue_url(url: str) -> str | None:
    """``https://sqs.eu-west-1.amazonaws.com/…`` → ``eu-west-1``; None if not named."""
    host = urlsplit(url).hostname or ""
    match = _SQS_HOST.match(host)
    return match.group(1) if match else None


class AwsSession:
    """Resolves credentials, regions and endpoints once, and signs requests."""

    def __init__(self, region: str = "", profile: str = "") -> None:
        self._botocore = botocore.session.get_session()
        if profile:
            self._botocore.set_config_variable("profile", profile)
        # AWS_REGION is what the SDKs and CLI v2 read; botocore reads AWS_DEFAULT_REGION.
        self.default_region = (
            region
            or os.environ.get("AWS_REGION", "")
            or self._botocore.get_config_variable("region")
            or ""
        )
        self._credentials: botocore.credentials.Credentials | None = None
        self._endpoints: dict[tuple[str, str], str] = {}
        self._signer = Signer()

    def region_for(self, queue_url: str | None = None) -> str:
        """The queue URL's region when it names one, else the configured region."""
        region = (queue_url and region_from_queue_url(queue_url)) or self.default_region
        if not region:
            raise ConfigError(
                "no AWS region: set AWS_REGION / AWS_DEFAULT_REGION, aws.region, "
                "or use a queue URL that names its region"
            )
        return region

    def endpoint(self, service: str, region: str) -> str:
        """The base URL for ``service`` in ``region``, honouring endpoint overrides."""
        key = (service, region)
        if key not in self._endpoints:
            url = self._endpoint_from_environment(service)
            if url is None:
                # botocore's rules (config file sections, partitions, FIPS…): it loads
                # the service's model, 30-70 ms of CPU, once per service and region.
                client = self._botocore.create_client(service, region_name=region)
                url = client.meta.endpoint_url
            self._endpoints[key] = url.rstrip("/")
        return self._endpoints[key]

    def _endpoint_from_environment(self, service: str) -> str | None:
        """``AWS_ENDPOINT_URL_<SERVICE>`` or ``AWS_ENDPOINT_URL``, which come first in
        the SDKs' order, unless ``ignore_configured_endpoint_urls`` says otherwise."""
        if self._botocore.get_config_variable("ignore_configured_endpoint_urls"):
            return None
        for name in (f"AWS_ENDPOINT_URL_{service.upper()}", "AWS_ENDPOINT_URL"):
            if url := os.environ.get(name, "").strip():
                return url
        return None

    def has_custom_endpoint(self, service: str, region: str) -> bool:
        """True when the endpoint is not AWS's own (moto, LocalStack, MinIO…)."""
        host = urlsplit(self.endpoint(service, region)).hostname or ""
        return not host.endswith(".amazonaws.com")

    async def _frozen_credentials(self) -> botocore.credentials.ReadOnlyCredentials:
        if self._credentials is None:
            self._credentials = await trio.to_thread.run_sync(self._botocore.get_credentials)
            if self._credentials is None:
                raise ConfigError(
                    "no AWS credentials found (environment, shared files, SSO, instance role)"
                )
        creds = self._credentials
        refreshable = isinstance(creds, botocore.credentials.RefreshableCredentials)
        if refreshable and creds.refresh_needed():
            # Refreshing may call STS or the instance metadata service: not on the loop.
            return await trio.to_thread.run_sync(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    async def sign(
        self,
        method: str,
        url: str,
        *,
        service: str,
        region: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> dict[str, str]:
        """Return ``headers`` plus the SigV4 ``Authorization`` and ``X-Amz-*`` headers."""
        creds = await self._frozen_credentials()
        return self._signer.sign(
            method,
            url,
            service=service,
            region=region,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            token=creds.token,
            now=datetime.now(UTC),
            headers=headers,
            body=body,
        )
