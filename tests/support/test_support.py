"""The shared scaffolding itself: the configuration builder renders what s3lb loads, and
the runner captures output, numbers its runs and reports exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from s3lb.config import loads
from tests.support.configs import s3_input, s3lb_config, sqs_input
from tests.support.daemon import S3lbProcess

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"


def test_the_builder_renders_a_config_s3lb_loads_without_warnings() -> None:
    text = s3lb_config(
        state_dir="/tmp/s",
        queues=[QUEUE],
        buckets=["s3://logs/prod/"],
        log_format="alb",
        input_options={"key_regex_fields": "^(?P<env>[^/]+)/"},
        es_url="http://127.0.0.1:9200",
        es={"worker": 3, "backoff.max": "2s"},
        metrics="127.0.0.1:0",
        object_workers=2,
    )
    config, warnings = loads(text)
    assert warnings == []
    s3, sqs = config.settings.inputs  # the s3 input first: import jobs are named inputs[N]
    assert (s3.type, s3.buckets, s3.log_format) == ("s3", ["s3://logs/prod/"], "alb")
    assert (sqs.type, sqs.queues_url, sqs.poll_frequency) == ("sqs", [QUEUE], 0.1)
    assert s3.key_regex_fields == sqs.key_regex_fields == "^(?P<env>[^/]+)/"
    assert (config.settings.state_dir, config.settings.object_workers) == ("/tmp/s", 2)
    assert (config.settings.shutdown_timeout, config.settings.wait_time) == (5, 1)
    es = config.output.elasticsearch
    assert es is not None and es.hosts == ["http://127.0.0.1:9200"]
    assert (es.worker, es.backoff.init, es.backoff.max, es.flush_interval) == (3, 0.2, 2, 0.2)
    assert config.metrics.listen == "127.0.0.1:0"


def test_none_drops_a_default_and_a_file_output_needs_no_cluster() -> None:
    doc = json.loads(
        s3lb_config(
            inputs=[sqs_input([QUEUE], poll_frequency=None), s3_input(["s3://b"])],
            file={"path": "-"},
            wait_time=None,
        )
    )
    assert "wait_time" not in doc["s3lb"] and doc["s3lb"]["shutdown_timeout"] == "5s"
    assert doc["s3lb"]["inputs"][0] == {"type": "sqs", "queues_url": [QUEUE], "log_format": "auto"}
    assert "output.elasticsearch" not in doc and doc["output.file"] == {"path": "-"}
    config, warnings = loads(json.dumps(doc))
    assert warnings == [] and config.output.file is not None


def test_the_runner_numbers_runs_keeps_each_log_and_reports_the_exit(tmp_path: Path) -> None:
    bad = S3lbProcess(tmp_path, "s3lb: [not, a, mapping]\n", command=["check"])
    bad.start()
    assert bad.wait(60) == 2
    first = bad.log
    assert "s3lb" in first and bad.log_path.name == "s3lb-001.log"
    bad.start()
    assert bad.wait(60) == 2
    assert bad.log_path.name == "s3lb-002.log" and bad.logs == first + bad.log
    split = S3lbProcess(tmp_path, "s3lb: [x]\n", command=["run"], name="s", split_output=True)
    split.start()
    status, out, err = split.finish(60)
    assert status == 2 and out == "" and "must be a mapping" in err
    assert split.log == err
    assert sorted(p.name for p in tmp_path.glob("s-*")) == ["s-001.err", "s-001.out"]
