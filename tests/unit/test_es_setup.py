"""``s3lb setup``: which templates, composed of what, installed idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from s3lb.cli.main import main
from s3lb.cli.setup import configured_formats, install, plan
from s3lb.config import loads
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.formats import FORMATS

CONFIG = """
s3lb:
  inputs:
    - {type: sqs, queues_url: ["http://q/1/a"], log_format: alb}
    - {type: sqs, queues_url: ["http://q/1/b"], log_format: clb}
output.elasticsearch:
  hosts: ["http://es.invalid:9200"]
  index: "lb-%{+yyyy.MM.dd}"
"""


def test_the_templates_follow_the_inputs_formats_and_the_index_setting() -> None:
    config, _ = loads(CONFIG)
    assert configured_formats(config) == ["alb", "elb"]
    assert config.output.elasticsearch is not None
    steps = dict(plan(config.output.elasticsearch, configured_formats(config)))
    assert list(steps) == [
        "/_component_template/s3lb-base",
        "/_component_template/s3lb-format-alb",
        "/_component_template/s3lb-format-elb",
        "/_index_template/s3lb-lb",
    ]
    template = steps["/_index_template/s3lb-lb"]
    assert template["index_patterns"] == ["lb-*"]
    assert template["composed_of"] == ["s3lb-base", "s3lb-format-alb", "s3lb-format-elb"]


def test_auto_takes_every_format_and_data_streams_and_the_dead_letter_index_get_theirs() -> None:
    config, _ = loads(CONFIG.replace("log_format: alb", "log_format: auto"))
    names = configured_formats(config)
    assert len(names) == len({FORMATS[n].name for n in FORMATS} - {"clb"})
    config, _ = loads(
        CONFIG.replace("lb-%{+yyyy.MM.dd}", "logs-lb-default")
        + "  data_stream: true\n  dead_letter_index: s3lb-rejected\n"
    )
    assert config.output.elasticsearch is not None
    steps = dict(plan(config.output.elasticsearch, ["alb"]))
    template = steps["/_index_template/s3lb-logs-lb-default"]
    assert template["data_stream"] == {} and template["index_patterns"] == ["logs-lb-default"]
    dead = steps["/_index_template/s3lb-dead-letter"]
    assert dead["index_patterns"] == ["s3lb-rejected"]
    with pytest.raises(ConfigError, match="no mappings"):
        plan(config.output.elasticsearch, ["syslog"])


async def test_setup_puts_each_template_and_running_it_again_sends_the_same() -> None:
    seen: list[tuple[str, str, object]] = []

    def cluster(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"acknowledged": True})

    config, _ = loads(CONFIG)
    assert config.output.elasticsearch is not None
    steps = plan(config.output.elasticsearch, ["alb"])
    lines = await install(config.output.elasticsearch, steps, httpx.MockTransport(cluster))
    first = list(seen)
    await install(config.output.elasticsearch, steps, httpx.MockTransport(cluster))
    assert seen == first + first
    assert [(m, p) for m, p, _ in first] == [("PUT", path) for path, _ in steps]
    assert lines[0] == "installed component template s3lb-base"
    assert lines[-1] == "installed index template s3lb-lb"


async def test_a_refused_template_is_an_error_naming_it() -> None:
    def cluster(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"type": "mapper_parsing_exception"}})

    config, _ = loads(CONFIG)
    assert config.output.elasticsearch is not None
    steps = plan(config.output.elasticsearch, ["alb"])
    with pytest.raises(SinkUnavailable, match=r"s3lb-base.*HTTP 400.*mapper_parsing"):
        await install(config.output.elasticsearch, steps, httpx.MockTransport(cluster))


def test_print_shows_the_templates_without_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s3lb.yml"
    path.write_text(CONFIG)
    assert main(["setup", "-c", str(path), "--print", "--format", "waf"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == [
        "/_component_template/s3lb-base",
        "/_component_template/s3lb-format-waf",
        "/_index_template/s3lb-lb",
    ]


def test_setup_without_a_cluster_output_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "s3lb.yml"
    path.write_text("s3lb: {inputs: []}\noutput.file: {path: '-'}\n")
    assert main(["setup", "-c", str(path)]) == 2
