"""``s3lb setup``: which templates, composed of what, installed idempotently on the
real OpenSearch node, and what the node then maps."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from s3lb.cli.main import main
from s3lb.config import ElasticsearchOutput, loads
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.formats import FORMATS
from s3lb.sinks.elasticsearch.setup import configured_formats, install, plan

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


def node_output(url: str, index: str) -> ElasticsearchOutput:
    config, _ = loads(f"output.elasticsearch: {{hosts: [{url!r}], index: {index!r}}}")
    assert config.output.elasticsearch is not None
    return config.output.elasticsearch


async def test_setup_installs_the_templates_and_a_rerun_says_unchanged(opensearch_url: str) -> None:
    name = f"t{uuid.uuid4().hex[:10]}"
    output = node_output(opensearch_url, name + "-%{+yyyy.MM.dd}")
    steps = plan(output, ["alb"])
    first = await install(output, steps)
    assert first[-1] == f"installed index template s3lb-{name}"
    assert await install(output, steps) == [
        "unchanged component template s3lb-base",
        "unchanged component template s3lb-format-alb",
        f"unchanged index template s3lb-{name}",
    ]
    # A changed plan (another format) installs what changed only.
    again = await install(output, plan(output, ["alb", "vpcflow"]))
    assert again == [
        "unchanged component template s3lb-base",
        "unchanged component template s3lb-format-alb",
        again[2],  # s3lb-format-vpcflow: installed by this or an earlier test
        f"installed index template s3lb-{name}",
    ]
    async with httpx.AsyncClient(base_url=opensearch_url, timeout=30) as node:
        stored = (await node.get(f"/_index_template/s3lb-{name}")).json()
        (template,) = stored["index_templates"]
        assert template["index_template"]["index_patterns"] == [f"{name}-*"]
        assert template["index_template"]["composed_of"] == [
            "s3lb-base",
            "s3lb-format-alb",
            "s3lb-format-vpcflow",
        ]
        # An index created afterwards gets the formats' real mappings.
        index = f"{name}-2025.01.01"
        assert (await node.put(f"/{index}")).status_code == 200
        mappings = (await node.get(f"/{index}/_mapping")).json()[index]["mappings"]
        assert mappings["properties"]["client_ip"]["type"] == "ip"
        assert mappings["properties"]["@timestamp"]["type"] == "date"
        await node.delete(f"/{index}")
        await node.delete(f"/_index_template/s3lb-{name}")


async def test_a_refused_template_is_an_error_naming_it(opensearch_url: str) -> None:
    output = node_output(opensearch_url, "x")
    name = f"t{uuid.uuid4().hex[:10]}-bad"
    steps = [
        (
            f"/_component_template/{name}",
            {"template": {"mappings": {"properties": {"n": {"type": "no-such-type"}}}}},
        )
    ]
    with pytest.raises(SinkUnavailable, match=rf"{name}.*HTTP 400.*mapper_parsing"):
        await install(output, steps)


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
