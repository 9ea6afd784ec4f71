"""SigV4 signatures of S3 and SQS requests (pure): the canonical request, string to sign
and ``Authorization`` header that botocore's ``SigV4Auth`` / ``S3SigV4Auth`` produce
for the same request, with the derived signing key kept per day, region and service
(four HMACs fewer a request). Credentials come from botocore (:mod:`s3lb.aws.session`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote, urlsplit

__all__ = ["Signer"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: Headers never signed (hop-by-hop, tracing, the user agent), as AWS SDKs leave them.
_UNSIGNED = frozenset(
    [
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    ]
)
#: Headers the signer sets itself (a caller's copy is replaced).
_OWN = frozenset(("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _normalized_path(path: str) -> str:
    """Dot segments and empty segments removed, then percent-encoded (not for S3)."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    out = "/" + "/".join(kept)
    if path.endswith("/") and out != "/":
        out += "/"
    return quote(out, safe="/~")


def _query(query: str) -> str:
    pairs = sorted(tuple(pair.partition("=")[::2]) for pair in query.split("&") if query)
    return "&".join(f"{k}={v}" for k, v in pairs)


class Signer:
    """Signs requests; remembers the signing keys of recent (day, region, service)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str, str, str], bytes] = {}

    def _key(self, secret: str, day: str, region: str, service: str) -> bytes:
        cached = self._keys.get((secret, day, region, service))
        if cached is None:
            if len(self._keys) > 32:  # a new day or rotated credentials
                self._keys.clear()
            key = ("AWS4" + secret).encode()
            for part in (day, region, service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            cached = self._keys[(secret, day, region, service)] = key
        return cached

    def sign(
        self,
        method: str,
        url: str,
        *,
        service: str,
        region: str,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: datetime,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> dict[str, str]:
        """``headers`` plus ``X-Amz-Date``, ``X-Amz-Security-Token`` (with a session
        token), ``X-Amz-Content-SHA256`` (S3) and ``Authorization``; ``now`` in UTC."""
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        out = {k: v for k, v in (headers or {}).items() if k.lower() not in _OWN}
        out["X-Amz-Date"] = stamp
        if token:
            out["X-Amz-Security-Token"] = token
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        if service == "s3":
            out["X-Amz-Content-SHA256"] = payload
        signed = {k.lower(): " ".join(v.split()) for k, v in out.items()}
        signed = {k: v for k, v in signed.items() if k not in _UNSIGNED}
        signed.setdefault("host", _host(url))
        names = sorted(signed)
        parts = urlsplit(url)
        # S3 signs the path as sent; other services a normalized, encoded one.
        path = parts.path if service == "s3" else _normalized_path(parts.path)
        canonical = "\n".join(
            (
                method.upper(),
                path,
                _query(parts.query),
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                payload,
            )
        )
        scope = f"{day}/{region}/{service}/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
        key = self._key(secret_key, day, region, service)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return out
