"""Where requests go: the endpoint overrides users set, in the SDKs' order."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3lb.aws.session import AwsSession

_OVERRIDES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CONFIG_FILE",
    "AWS_PROFILE",
)


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path) + "/no-config")


def test_aws_own_endpoints_without_overrides() -> None:
    session = AwsSession("eu-west-1")
    assert session.endpoint("sqs", "eu-west-1") == "https://sqs.eu-west-1.amazonaws.com"
    assert session.endpoint("s3", "eu-west-1") == "https://s3.eu-west-1.amazonaws.com"
    assert not session.has_custom_endpoint("s3", "eu-west-1")


def test_a_service_override_comes_before_the_global_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    session = AwsSession("us-east-1")
    assert session.endpoint("s3", "us-east-1") == "http://127.0.0.1:9000"
    assert session.endpoint("sqs", "us-east-1") == "http://127.0.0.1:5000"
    assert session.has_custom_endpoint("sqs", "us-east-1")


def test_ignore_configured_endpoint_urls_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    session = AwsSession("eu-west-1")
    assert session.endpoint("sqs", "eu-west-1") == "https://sqs.eu-west-1.amazonaws.com"


def test_the_config_file_services_section_is_honoured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = f"{tmp_path}/config"
    with open(config, "w") as f:
        f.write(
            "[default]\nservices = local\n\n"
            "[services local]\nsqs =\n  endpoint_url = http://127.0.0.1:4566\n"
        )
    monkeypatch.setenv("AWS_CONFIG_FILE", config)
    session = AwsSession("eu-west-1")
    assert session.endpoint("sqs", "eu-west-1") == "http://127.0.0.1:4566"
    assert session.endpoint("s3", "eu-west-1") == "https://s3.eu-west-1.amazonaws.com"
