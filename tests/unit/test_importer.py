"""The jobs of ``s3lb import`` (from the ``type: s3`` inputs and the flags) and the
synthetic notifications of ``--enqueue``."""

from __future__ import annotations

import pytest

from s3lb.aws.notifications import decode_notification
from s3lb.aws.s3 import ListedObject
from s3lb.config import loads
from s3lb.errors import ConfigError
from s3lb.model import ObjectRef
from s3lb.pipeline.import_jobs import ImportOptions, notification_body, plan_jobs
from s3lb.sources.window import Window
from tests.fakes.fake_bucket import utc

CONFIG = """
s3lb:
  inputs:
    - type: sqs
      queues_url: ["https://sqs.eu-west-1.amazonaws.com/1/q"]
    - type: s3
      name: alb
      buckets: ["s3://logs", "s3://logs/", "s3://logs/prod/"]
      since: 2018-10-15T01:00
      to: "2018-11-20"
    - type: s3
      buckets: ["s3://other"]
output.file.path: "-"
"""


def test_jobs_come_from_s3_inputs_and_flags_override_the_file() -> None:
    config, _ = loads(CONFIG)
    jobs = plan_jobs(config, ImportOptions())
    assert [j.id for j in jobs] == [
        "alb s3://logs/ since=2018-10-15T01:00:00Z to=2018-11-20T00:00:00Z",
        "alb s3://logs/prod/ since=2018-10-15T01:00:00Z to=2018-11-20T00:00:00Z",
        "inputs[2] s3://other/ since=- to=-",
    ]
    (job,) = plan_jobs(config, ImportOptions(input="inputs[2]", since="2024-01-01", to=""))
    assert job.window == Window(utc(2024, 1, 1), None)
    assert (job.bucket, job.prefix, job.input.name) == ("other", "", "inputs[2]")
    enqueue = plan_jobs(config, ImportOptions(input="alb", enqueue="https://q"))
    assert all(j.id.endswith(" enqueue=https://q") for j in enqueue)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ImportOptions(input="nope"), "no type: s3 input named 'nope'"),
        (ImportOptions(input="alb", since="2019-01-01"), "must be before to"),
        (ImportOptions(to="soon"), "--to: not an ISO 8601"),
    ],
)
def test_bad_import_options_are_config_errors(options: ImportOptions, message: str) -> None:
    config, _ = loads(CONFIG)
    with pytest.raises(ConfigError, match=message):
        plan_jobs(config, options)


@pytest.mark.parametrize("key", ["a/b.log", "dir with spaces/a+b=c (1).log.gz", "é/100%.log"])
def test_an_enqueued_notification_decodes_to_the_listed_object(key: str) -> None:
    obj = ListedObject(key, 1234, "0123abcd-2", utc(2024, 1, 1))
    body = notification_body("logs", obj, "eu-west-1", "2025-01-01T00:00:00Z")
    (ref,) = decode_notification(body).objects
    assert ref == ObjectRef("logs", key, "0123abcd-2", size=1234, event_time=ref.event_time)
