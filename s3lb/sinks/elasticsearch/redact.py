"""What of a cluster's answer may be shown: URLs without passwords, short reasons
without credentials (some proxies echo the request's headers in an error page)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_text", "redact_url", "short_reason"]

#: How much of an answer a message shows.
_REASON_CHARS = 200
_SECRET = re.compile(
    r"(?i)(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[_-]?key|"
    r"password|passwd|secret|token|x-amz-security-token)"
    r"(\"?\s*[:=]\s*\"?)"
    r"(?:(?:basic|bearer|apikey|aws4-hmac-sha256)\s+)?[^\s\",;&}]+"
)
_SCHEME_TOKEN = re.compile(r"(?i)\b(basic|bearer|apikey)\s+[A-Za-z0-9+/=._~-]{8,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def redact_url(url: object) -> str:
    """``url`` with the password of its user info (``user:pass@host``) masked, for
    messages and logs."""
    text = str(url)
    parts = urlsplit(text)
    if parts.password is None:
        return text
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def redact_text(text: str) -> str:
    """``text`` with credential material (headers, passwords, tokens, URL user info)
    masked as ``***``."""
    text = _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _SCHEME_TOKEN.sub(lambda m: f"{m.group(1)} ***", text)
    return _USERINFO.sub(r"\1:***@", text)


def short_reason(status: int, body: bytes | str) -> str:
    """``HTTP 401: security_exception: missing authentication…``: the status and a
    short, redacted reason (the error's type and reason when the body is the cluster's
    JSON, else its first line), never the whole body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    reason = ""
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    elif isinstance(error, str):
        reason = error
    else:
        plain = re.sub(r"<[^>]*>", "\n", text)
        reason = next((line.strip() for line in plain.splitlines() if line.strip()), "")
    reason = redact_text(" ".join(reason.split()))
    if len(reason) > _REASON_CHARS:
        reason = reason[:_REASON_CHARS] + "…"
    return f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
