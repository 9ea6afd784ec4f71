"""What of a cluster's answer s3lb shows: short reasons, no credentials (pure)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from s3lb.sinks.elasticsearch.redact import redact_text, redact_url, short_reason

SECRET = "hunter2SECRETvalue"


def test_the_clusters_json_error_gives_its_type_and_reason() -> None:
    body = json.dumps(
        {"error": {"type": "security_exception", "reason": "missing authentication"}, "status": 401}
    )
    assert (
        short_reason(401, body.encode()) == "HTTP 401: security_exception: missing authentication"
    )


def test_an_echoed_request_is_cut_to_its_first_line_and_masked() -> None:
    page = (
        "<html><body><h1>401 Authorization Required</h1>\n"
        f"Authorization: Basic {SECRET}\nCookie: sid={SECRET}\n</body></html>"
    )
    reason = short_reason(401, page)
    assert reason == "HTTP 401: 401 Authorization Required"
    one_line = f"denied: authorization: Bearer {SECRET}; password={SECRET} x-api-key: {SECRET}"
    assert SECRET not in short_reason(403, one_line)
    assert short_reason(502, "") == "HTTP 502"


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=3000))
def test_a_reason_is_one_short_line_whatever_the_body(body: str) -> None:
    reason = short_reason(500, body)
    assert reason.startswith("HTTP 500") and "\n" not in reason
    assert len(reason) <= len("HTTP 500: ") + 201


@given(st.sampled_from(["Authorization", "cookie", "Password", "api_key", "X-Amz-Security-Token"]))
def test_credentials_in_any_header_or_field_form_are_masked(name: str) -> None:
    for text in (f"{name}: {SECRET}", f'"{name}":"{SECRET}"', f"{name}={SECRET}&a=b"):
        assert SECRET not in redact_text(text)
    assert SECRET not in redact_text(f"https://user:{SECRET}@es.example:9200/_bulk")
    assert (
        redact_url(f"https://user:{SECRET}@es.example:9200/") == "https://user:***@es.example:9200/"
    )
