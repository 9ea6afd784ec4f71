"""Configuration: the seed's files load unchanged; errors name the key."""

from __future__ import annotations

import pytest

from s3lb.config import ElasticsearchOutput, FileOutput, load, loads, parse_duration
from s3lb.errors import ConfigError
from tests.paths import SEED as SEED_DIR

SEED_CONFIGS = SEED_DIR / "configs"

ISSUE_CONFIG = """
s3lb:
  state_dir: ./state-test
  shutdown_timeout: 5s
  inputs:
    - type: sqs
      queues_url: ["http://127.0.0.1:PORT/123456789012/alb-logs"]
      log_format: alb
      key_regex_fields: ^(?P<environment>[^\\-]+)-(?P<application>[^/\\-]+)
      poll_frequency: 1s
output.elasticsearch:
  hosts: ["http://127.0.0.1:9200"]
  index: "alb-%{+yyyy.MM.dd}"
"""


def test_the_seed_config_loads_with_its_three_inputs() -> None:
    config, warnings = load(SEED_CONFIGS / "config.yml")
    assert config.root == "s3logsbeat"
    assert [i.log_format for i in config.settings.inputs] == ["alb", "cloudfront", "elb"]
    assert config.settings.inputs[0].queues_url[1].endswith("MyQueueForALB2")
    assert config.settings.inputs[0].poll_frequency == 300
    assert config.settings.inputs[1].fields == {"environment": "staging"}
    assert isinstance(config.sink, ElasticsearchOutput)
    assert config.sink.host_urls() == ["http://127.0.0.1:9200"]
    assert warnings == []


def test_the_issue_config_loads_nested_and_dotted_output() -> None:
    config, _ = loads(ISSUE_CONFIG)
    assert config.settings.state_dir == "./state-test"
    assert config.settings.shutdown_timeout == 5
    assert config.output.elasticsearch is not None
    assert config.output.elasticsearch.index == "alb-%{+yyyy.MM.dd}"
    nested, _ = loads(
        "s3lb: {inputs: []}\noutput:\n  elasticsearch:\n    hosts: [h:1]\n    index: x"
    )
    assert nested.output.elasticsearch is not None
    assert nested.output.elasticsearch.host_urls() == ["http://h:1"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("1m", 60), ("250ms", 0.25), (3, 3), ("2h", 7200), ("7d", 604800), ("1.5", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_environment_variables_are_expanded_with_defaults() -> None:
    config, _ = loads(
        "s3lb: {state_dir: '${DIR}'}\noutput.elasticsearch:\n  password: ${PW:none}\n"
        "  worker: ${W}\n  hosts: ['${HOST}:9200']",
        {"DIR": "/var/lib/s3lb", "W": "4", "HOST": "es"},
    )
    assert config.settings.state_dir == "/var/lib/s3lb"
    assert config.output.elasticsearch is not None
    assert config.output.elasticsearch.password == "none"
    assert config.output.elasticsearch.worker == 4
    assert config.output.elasticsearch.hosts == ["es:9200"]


def test_a_missing_environment_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="MISSING"):
        loads("s3lb: {state_dir: '${MISSING}'}\noutput.file.path: '-'", {})


def test_unknown_keys_are_warned_about_by_path() -> None:
    _, warnings = loads(
        "s3lb:\n  inputs:\n    - {type: sqs, queues_url: ['http://sqs/1/q'], bogus: 1}\n"
        "  extra: 2\n"
        "output.file: {path: '-', colour: red}\nqueue.mem.events: 128\nwhatever: 1"
    )
    assert "unknown key 's3lb.inputs[0].bogus' ignored" in warnings
    assert "unknown key 's3lb.extra' ignored" in warnings
    assert "unknown key 'output.file.colour' ignored" in warnings
    assert "unknown key 'whatever' ignored" in warnings
    assert not any("queue" in w for w in warnings)  # a beats setting, silently accepted


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("s3lb: {shutdown_timeout: soon}", "s3lb.shutdown_timeout"),
        ("s3logsbeat: {max_inflight_messages: many}", "s3logsbeat.max_inflight_messages"),
        ("s3lb: {inputs: [{type: kafka}]}", "s3lb.inputs[0].type"),
        ("s3lb: {inputs: [{type: sqs}]}", "s3lb.inputs[0]"),
        (
            "s3lb: {inputs: [{type: sqs, queues_url: ['http://sqs/1/q'], poll_frequency: x}]}",
            "s3lb.inputs[0].poll_frequency",
        ),
        (
            "s3lb: {inputs: [{type: sqs, queues_url: ['http://sqs/1/q'], key_regex_fields: '('}]}",
            "s3lb.inputs[0].key_regex_fields",
        ),
        ("s3lb: {wait_time: 30s}", "s3lb.wait_time"),
    ],
)
def test_invalid_values_name_their_key(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads(text + "\noutput.file.path: '-'")
    assert info.value.path == path


def test_both_roots_or_no_output_are_errors() -> None:
    with pytest.raises(ConfigError, match="not both"):
        loads("s3lb: {}\ns3logsbeat: {}\noutput.file.path: '-'")
    with pytest.raises(ConfigError, match="no enabled output"):
        loads("s3lb: {}")


def test_file_output_with_filename_uses_path_as_directory() -> None:
    config, _ = loads("output.file: {path: /tmp/out, filename: events.ndjson}")
    assert isinstance(config.sink, FileOutput)
    assert config.sink.target() == "/tmp/out/events.ndjson"


def test_an_unknown_log_format_is_an_error_naming_the_input() -> None:
    with pytest.raises(ConfigError, match="known formats") as info:
        loads(
            "s3lb: {inputs: [{type: sqs, queues_url: ['http://sqs/1/q'], log_format: syslog}]}\n"
            "output.file.path: '-'"
        )
    assert info.value.path == "s3lb.inputs[0].log_format"


def test_unquoted_yaml_dates_are_read_as_text() -> None:
    config, _ = loads(
        "s3lb:\n  inputs:\n    - {type: s3, buckets: ['s3://b'], since: 2024-01-01, "
        "to: 2024-02-01 10:00:00}\noutput.file.path: '-'"
    )
    assert config.settings.inputs[0].since == "2024-01-01"
    assert config.settings.inputs[0].to == "2024-02-01T10:00:00"
