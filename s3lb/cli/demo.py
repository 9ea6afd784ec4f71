"""``s3lb demo``: the real daemon, end to end, on a local S3/SQS with sample logs.

Starts a moto server on 127.0.0.1 (an S3 and SQS emulator; installed with the
``demo`` or ``test`` extra), creates a bucket whose notifications go to a queue,
uploads the bundled sample logs under the keys AWS itself writes (gzip where AWS
gzips), runs ``s3lb run`` in-process with ``log_format: auto`` and a file output,
and stops once every notification is processed. No AWS account is involved.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import trio

from s3lb.cli.common import Exit
from s3lb.config import Config, loads
from s3lb.sinks.file import open_target
from s3lb.telemetry import Telemetry

__all__ = ["SAMPLES", "add_parser", "run_demo"]

#: How to get moto, the demo's S3/SQS emulator (s3lb is installed from its repository).
INSTALL_HINT = (
    "s3lb demo needs moto, from the demo extra: pip install -e '.[demo]' in a checkout "
    "of the s3lb repository, or pip install 'moto[server]>=5.0' into this environment"
)


def add_parser(commands: Any) -> None:
    """Register ``demo`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "demo",
        help="run the daemon end to end on a local S3/SQS (moto) with sample logs",
        description=__doc__,
    )
    parser.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="FILE",
        help="NDJSON output file, its directory created if missing (default: - = stdout)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return run_demo(args.output)


ACCOUNT = "123456789012"
#: (bundled file, key AWS would write, gzip it)
SAMPLES = [
    (
        "alb.log",
        f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-2/2016/08/10/{ACCOUNT}_elasticloadbalancing"
        "_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20160810T2210Z_192.168.131.39_2soosksg.log.gz",
        True,
    ),
    (
        "elb.log",
        f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2015/05/13/{ACCOUNT}_elasticloadbalancing"
        "_us-east-1_my-loadbalancer_20150513T2340Z_192.168.131.39_a1b2c3d4.log",
        False,
    ),
    ("cloudfront.log", "cloudfront/E2EXAMPLE12345.2014-05-23-01.a1b2c3d4.gz", True),
    (
        "vpcflow.log",
        f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2014/12/14/{ACCOUNT}_vpcflowlogs_us-east-1"
        "_fl-1234abcd_20141214T0420Z_1a2b3c4d.log.gz",
        True,
    ),
    (
        "cloudtrail.json",
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2014/03/06/{ACCOUNT}_CloudTrail_us-east-1"
        "_20140306T2225Z_abcdEFGH1234.json.gz",
        True,
    ),
]


def run_demo(output: str = "-", timeout: float = 120.0) -> int:
    """Run the demo; documents go to ``output`` (``-`` = stdout). Returns the exit code.

    Raises:
        ConfigError: ``output`` cannot be written (naming ``-o``).
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return Exit.USAGE
    if output != "-":
        open_target(output, "-o").close()  # before moto starts: a bad path is said at once
    import botocore.session

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        session = botocore.session.get_session()
        sqs = session.create_client("sqs")
        s3 = session.create_client("s3")
        queue_url = sqs.create_queue(QueueName="s3lb-demo")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        s3.create_bucket(Bucket="s3lb-demo-logs")
        s3.put_bucket_notification_configuration(
            Bucket="s3lb-demo-logs",
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        data = resources.files("s3lb") / "demo_data"
        for name, key, compress in SAMPLES:
            body = (data / name).read_bytes()
            s3.put_object(
                Bucket="s3lb-demo-logs", Key=key, Body=gzip.compress(body) if compress else body
            )
        with tempfile.TemporaryDirectory(prefix="s3lb-demo-") as state_dir:
            config, _ = loads(
                f"""
s3lb:
  state_dir: {state_dir}
  shutdown_timeout: 5s
  stats_interval: 1h
  wait_time: 1s
  inputs:
    - type: sqs
      queues_url: ["{queue_url}"]
      log_format: auto
      poll_frequency: 100ms
output.file:
  path: "{output}"
"""
            )
            telemetry = Telemetry()
            ok = trio.run(_run_until_drained, config, telemetry, len(SAMPLES), timeout)
            dead = list((Path(state_dir) / "dead-letter").glob("*.ndjson"))
            c = telemetry.counters
            print(
                f"s3lb demo: {c['objects_done']} objects, {c['events_indexed']} events written to "
                f"{'stdout' if output == '-' else output}, {c['events_parse_failed']} dead-lettered"
                f"{' (' + str(dead[0]) + ')' if dead else ''}, {c['messages_deleted']} messages "
                f"deleted ({c['messages_ignored']} without objects: the S3 test event)",
                file=sys.stderr,
            )
            return Exit.OK if ok else Exit.FAILED
    finally:
        server.stop()


async def _run_until_drained(
    config: Config, telemetry: Telemetry, objects: int, timeout: float
) -> bool:
    from s3lb.cli.run import serve

    stop = trio.Event()
    drained = False

    async def watch() -> None:
        nonlocal drained
        with trio.move_on_after(timeout):
            c = telemetry.counters
            # Every object shipped and its message deleted (the S3 test event is one more).
            while c["objects_done"] < objects or (
                c["messages_deleted"] < objects + c["messages_ignored"]
            ):
                await trio.sleep(0.1)
            drained = True
        stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await serve(config, telemetry, stop=stop)
    return drained
