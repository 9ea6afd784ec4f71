"""Parse throughput per format, and ALB against naive baselines measured in the same run.

Run: ``.venv/bin/python bench/parse.py`` from the repository root. Every number is one
core, one process: raw line bytes in, JSON document bytes out.

- s3lb path: ``parser.parse(raw)`` then ``msgspec.json.Encoder().encode(doc)``.
- Naive baselines (ALB only): decode the bytes, one ``re.match`` per line with named
  groups, ``groupdict()``, ``json.dumps``. Two regexes are measured:
  ``athena``: the regex AWS documents for querying ALB logs with Athena (its request URL
  is ``(.*)``, so URLs holding spaces match), and ``seed``: s3logsbeat's stricter regex
  (URL ``[^ ]*``; lines whose URL holds a space do not match and are not encoded).

The ALB input is the current 33-field lines of tests/data/formats/alb.log repeated
(a real object holds lines of one era). A second, mixed-era ALB run uses every sample
line in turn, which is the worst case for s3lb's learned-shape tokenizer.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from s3lb.formats import get_format  # noqa: E402
from s3lb.formats.cloudtrail import RecordsSplitter  # noqa: E402

SAMPLES = REPO / "tests" / "data" / "formats"
ALB_LINES = 200_000
OTHER_LINES = 50_000

ATHENA_ALB = re.compile(
    r"(?P<type>[^ ]*) (?P<time>[^ ]*) (?P<elb>[^ ]*) (?P<client_ip>[^ ]*):(?P<client_port>[0-9]*)"
    r" (?P<target_ip>[^ ]*)[:-](?P<target_port>[0-9]*) (?P<request_processing_time>[-.0-9]*)"
    r" (?P<target_processing_time>[-.0-9]*) (?P<response_processing_time>[-.0-9]*)"
    r" (?P<elb_status_code>|[-0-9]*) (?P<target_status_code>-|[-0-9]*)"
    r' (?P<received_bytes>[-0-9]*) (?P<sent_bytes>[-0-9]*) "(?P<request_verb>[^ ]*)'
    r' (?P<request_url>.*) (?P<request_proto>- |[^ ]*)" "(?P<user_agent>[^"]*)"'
    r" (?P<ssl_cipher>[A-Z0-9-_]+) (?P<ssl_protocol>[A-Za-z0-9.-]*)"
    r' (?P<target_group_arn>[^ ]*) "(?P<trace_id>[^"]*)" "(?P<domain_name>[^"]*)"'
    r' "(?P<chosen_cert_arn>[^"]*)" (?P<matched_rule_priority>[-.0-9]*)'
    r' (?P<request_creation_time>[^ ]*) "(?P<actions_executed>[^"]*)"'
    r' "(?P<redirect_url>[^"]*)" "(?P<lambda_error_reason>[^ ]*)"'
    r' "(?P<target_port_list>[^\s]+?)" "(?P<target_status_code_list>[^\s]+)"'
    r' "(?P<classification>[^ ]*)" "(?P<classification_reason>[^ ]*)"'
    r" ?(?P<conn_trace_id>[^ ]*)?(?P<rest> .*)?"
)
SEED_ALB = re.compile(
    r"^(?P<type>[^ ]*) (?P<timestamp>[^ ]*) (?P<elb>[^ ]*) (?P<client_ip>[^ ]*):"
    r"(?P<client_port>[0-9]*) ((?P<target_ip>[^ ]+)[:-](?P<target_port>[0-9]+)|-)"
    r" (?P<request_processing_time>[-.0-9]*) (?P<target_processing_time>[-.0-9]*)"
    r" (?P<response_processing_time>[-.0-9]*) (?P<elb_status_code>|[-0-9]*)"
    r" (?P<target_status_code>-|[-0-9]*) (?P<received_bytes>[-0-9]*) (?P<sent_bytes>[-0-9]*)"
    r' "(?P<request_verb>[^ ]*) (?P<request_url>[^ ]*) (?P<request_proto>- |[^ ]*)"'
    r' "(?P<user_agent>[^"]*)" (?P<ssl_cipher>[A-Z0-9_-]+) (?P<ssl_protocol>[A-Za-z0-9.-]*)'
    r' (?P<target_group_arn>[^ ]*) "(?P<trace_id>[^"]*)"'
)


def lines_of(name: str) -> list[bytes]:
    """The records of a sample, without headers and line endings."""
    out = []
    for line in (SAMPLES / name).read_bytes().splitlines():
        if line and not line.startswith(b"#") and not line.startswith(b"version "):
            out.append(line)
    return out


def repeat_to(lines: list[bytes], count: int) -> list[bytes]:
    return (lines * (count // len(lines) + 1))[:count]


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    """Run ``fn`` (which returns how many lines it turned into JSON); best of 2."""
    best, done = float("inf"), 0
    for _ in range(2):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        done = fn()
        elapsed = time.perf_counter() - start
        gc.enable()
        best = min(best, elapsed)
    return best, done


def s3lb_run(fmt: str, lines: list[bytes], options: dict | None = None) -> Callable[[], int]:
    log_format = get_format(fmt)
    encode = msgspec.json.Encoder().encode

    def run() -> int:
        parser = log_format.new_parser(options or {})  # one per object, as the daemon does
        parse = parser.parse
        n = 0
        for raw in lines:
            doc = parse(raw)
            if doc is not None:
                encode(doc)
                n += 1
        return n

    return run


def naive_run(regex: re.Pattern[str], lines: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        n = 0
        for raw in lines:
            m = regex.match(raw.decode())
            if m is not None:
                json.dumps(m.groupdict())
                n += 1
        return n

    return run


def cloudtrail_lines(count: int) -> tuple[list[bytes], bytes]:
    """Records cut from a synthetic CloudTrail file of ``count`` records, and the file."""
    records = json.loads((SAMPLES / "cloudtrail.json").read_bytes())["Records"]
    body = [json.dumps(records[i % len(records)], separators=(",", ":")) for i in range(count)]
    data = ('{"Records":[' + ",".join(body) + "]}").encode()
    splitter = RecordsSplitter()
    raws = [*splitter.feed(data), *splitter.close()]
    return raws, data


def main() -> None:
    print(f"python {sys.version.split()[0]}, msgspec {msgspec.__version__}; best of 2 runs")
    print(f"{'format':<22}{'lines':>9}{'lines/s':>12}{'us/line':>9}")

    def report(label: str, seconds: float, done: int) -> float:
        rate = done / seconds
        print(f"{label:<22}{done:>9}{rate:>12,.0f}{seconds / done * 1e6:>9.2f}")
        return rate

    alb_modern = [line for line in lines_of("alb.log") if line.count(b'"') >= 30][:16]
    alb = repeat_to(alb_modern, ALB_LINES)
    ours = report("alb (s3lb)", *timed(s3lb_run("alb", alb)))
    athena = report("alb naive: athena re", *timed(naive_run(ATHENA_ALB, alb)))
    seed = report("alb naive: seed re", *timed(naive_run(SEED_ALB, alb)))
    mixed = repeat_to(lines_of("alb.log"), ALB_LINES // 2)
    ours_mixed = report("alb mixed eras (s3lb)", *timed(s3lb_run("alb", mixed)))
    athena_mixed = report("  athena re, mixed", *timed(naive_run(ATHENA_ALB, mixed)))

    for fmt, name in [
        ("elb", "clb.log"),
        ("nlb", "nlb.log"),
        ("cloudfront", "cloudfront.log"),
        ("vpcflow", "vpcflow_default_v2.log"),
        ("s3access", "s3_access.log"),
        ("waf", "waf.log"),
        ("route53_resolver", "route53_resolver.log"),
        ("network_firewall", "network_firewall.log"),
    ]:
        report(fmt, *timed(s3lb_run(fmt, repeat_to(lines_of(name), OTHER_LINES))))
    raws, data = cloudtrail_lines(20_000)
    report("cloudtrail (records)", *timed(s3lb_run("cloudtrail", raws)))

    def split_all() -> int:
        splitter = RecordsSplitter()
        n = 0
        for i in range(0, len(data), 1 << 16):
            n += sum(1 for _ in splitter.feed(data[i : i + (1 << 16)]))
        return n + sum(1 for _ in splitter.close())

    seconds, done = timed(split_all)
    print(
        f"{'cloudtrail splitter':<22}{done:>9}{done / seconds:>12,.0f}"
        f"{'':>9}  ({len(data) / seconds / 1e6:.0f} MB/s)"
    )

    print()
    print(f"ALB s3lb vs naive athena regex + json.dumps: {ours / athena:.2f}x (target >= 2x)")
    print(f"ALB s3lb vs naive seed regex + json.dumps:   {ours / seed:.2f}x")
    print(f"ALB mixed eras, s3lb vs athena regex:       {ours_mixed / athena_mixed:.2f}x")


if __name__ == "__main__":
    main()
