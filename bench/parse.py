"""Parse throughput: ``s3lb parse`` against a naive regex script, both as whole processes
on one core (the result), then per format in-process (information).

Run: ``.venv/bin/python bench/parse.py [--quick]`` from the repository root
(``--help``: the knobs).

**Whole process (the RATIO line).** The ALB input is the current 33-field lines of
tests/data/formats/alb.log repeated to ``--lines`` lines (500,000, about 320 MB;
``--quick`` 100,000), written to a file in a temporary directory (a real object holds
lines of one era). Two commands read that file and write one JSON document per line:

- ``python -m s3lb parse -f alb FILE`` (this checkout);
- the naive script, written beside the input (``naive.py``): what a user would write,
  a text-mode ``for line in open(FILE)`` (decoding), ``re.match`` with the regex AWS
  documents for querying ALB logs with Athena, ``groupdict()``, ``json.dumps``, and one
  ``write`` per line to the (block-buffered) ``sys.stdout``.

Each runs as a subprocess pinned to ONE core (``os.sched_setaffinity`` in the child,
the last core this bench may use), stdout to ``/dev/null`` (formatting and the write
calls are paid, no disk or pipe reader is), the input in the page cache (a first
untimed run reads it). The two alternate ``--repeats`` times (3); for each the best
wall-clock time and the best CPU time of the child (user + system, from ``os.wait4``)
are kept. The RATIO is naive CPU / s3lb CPU: on a shared machine CPU time is what one
core spends, wall-clock also counts waiting for a core (printed as information). Both
start a fresh interpreter: start-up (imports) is part of what is measured. Before
timing, a 1,000-line run of each checks that both print one document per line. After
the table, where the CPU of ``s3lb parse`` goes per line: read, frame, parse, encode
and write run in the bench process on the same core, a piece of text at a time as in
``parse_stream``, and start-up is the CPU of a whole process on an empty file
(information; measured apart from the table, so its sum differs a little).

**In-process (information).** Every number is one core, one process: raw line bytes in,
JSON document bytes out.

- s3lb path: ``parser.parse(raw)`` then ``msgspec.json.Encoder().encode(doc)``.
- Naive baselines (ALB only): decode the bytes, one ``re.match`` per line with named
  groups, ``groupdict()``, ``json.dumps``. Two regexes are measured:
  ``athena``: the regex AWS documents for querying ALB logs with Athena (its request URL
  is ``(.*)``, so URLs holding spaces match), and ``seed``: s3logsbeat's stricter regex
  (URL ``[^ ]*``; lines whose URL holds a space do not match and are not encoded).

A second, mixed-era ALB run uses every sample line in turn, which is the worst case for
s3lb's learned-shape tokenizer.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
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
TARGET = 2.5

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


# -- whole processes ---------------------------------------------------------------------

NAIVE_SCRIPT = """\
import json
import re
import sys

ATHENA = re.compile({pattern!r})

write = sys.stdout.write
with open(sys.argv[1], encoding="utf-8", errors="replace") as lines:
    for line in lines:
        m = ATHENA.match(line)
        if m is not None:
            write(json.dumps(m.groupdict()) + "\\n")
"""


class Run:
    """One finished child: its wall-clock and CPU seconds."""

    def __init__(self, wall: float, cpu: float) -> None:
        self.wall = wall
        self.cpu = cpu


def run_pinned(cmd: list[str], core: int, stdout: int) -> Run:
    """Run ``cmd`` on ``core`` only; its wall-clock time and its CPU (user + system)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=stdout, env=env, preexec_fn=lambda: os.sched_setaffinity(0, {core})
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} exited with {proc.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime)


def count_output(cmd: list[str], core: int) -> int:
    """How many lines ``cmd`` prints."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    ).stdout
    return out.count(b"\n")


def whole_process(lines: int, repeats: int) -> float:
    """Time ``s3lb parse`` and the naive script on one core; print and return the ratio."""
    core = max(os.sched_getaffinity(0))
    modern = [line for line in lines_of("alb.log") if line.count(b'"') >= 30][:16]
    with tempfile.TemporaryDirectory(prefix="s3lb-bench-parse-") as tmp:
        naive = Path(tmp) / "naive.py"
        naive.write_text(NAIVE_SCRIPT.format(pattern=ATHENA_ALB.pattern))
        sample, data = Path(tmp) / "sample.log", Path(tmp) / "alb.log"
        sample.write_bytes(b"\n".join(repeat_to(modern, 1000)) + b"\n")
        with data.open("wb") as f:
            block = b"\n".join(modern) + b"\n"
            f.write(block * (lines // len(modern)))
            f.write(b"".join(line + b"\n" for line in modern[: lines % len(modern)]))
        size = data.stat().st_size
        commands = {
            "s3lb parse": [sys.executable, "-m", "s3lb", "parse", "-f", "alb"],
            "naive regex script": [sys.executable, str(naive)],
        }
        for name, cmd in commands.items():
            printed = count_output([*cmd, str(sample)], core)
            if printed != 1000:
                raise SystemExit(f"{name} printed {printed} documents for 1000 lines")
        print(
            f"whole processes on core {core}: {lines:,} ALB lines ({size / 1e6:.0f} MB), "
            f"stdout to /dev/null, best of {repeats} alternating runs"
        )
        best: dict[str, Run] = {}
        with open(os.devnull, "wb") as devnull:
            run_pinned([*commands["naive regex script"], str(data)], core, devnull.fileno())
            for _ in range(repeats):
                for name, cmd in commands.items():
                    run = run_pinned([*cmd, str(data)], core, devnull.fileno())
                    old = best.get(name)
                    best[name] = Run(
                        min(run.wall, old.wall if old else run.wall),
                        min(run.cpu, old.cpu if old else run.cpu),
                    )
        print(f"{'command':<22}{'wall s':>9}{'CPU s':>9}{'us/line':>9}{'lines/s':>12}")
        for name, run in best.items():
            print(
                f"{name:<22}{run.wall:>9.2f}{run.cpu:>9.2f}{run.cpu / lines * 1e6:>9.2f}"
                f"{lines / run.cpu:>12,.0f}"
            )
        ours, naive_run_ = best["s3lb parse"], best["naive regex script"]
        print(f"wall-clock ratio naive/s3lb (information): {naive_run_.wall / ours.wall:.2f}x")
        empty = Path(tmp) / "empty.log"
        empty.write_bytes(b"")
        with open(os.devnull, "wb") as devnull:
            starts = [
                run_pinned([*commands["s3lb parse"], str(empty)], core, devnull.fileno()).cpu
                for _ in range(5)
            ]
        breakdown(data, lines, core, min(starts), ours.cpu)
    return naive_run_.cpu / ours.cpu


def breakdown(path: Path, lines: int, core: int, startup: float, whole: float) -> None:
    """Where the CPU of ``s3lb parse`` goes per line (information): its stages run here
    on ``core``, a piece at a time as ``parse_stream`` runs them, and its start-up
    (the CPU of a whole process on an empty file, best of 5)."""
    from s3lb.pipeline.framing import LineCutter
    from s3lb.pipeline.parsing import ObjectParser

    clock, spent = time.process_time, [0.0] * 5
    parser, cutter = ObjectParser("alb", str(path)), LineCutter()
    encode_lines = msgspec.json.Encoder().encode_lines
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        with path.open("rb") as source, open(os.devnull, "wb") as out:
            while True:
                t0 = clock()
                chunk = source.read(256 * 1024)  # parse_stream's reads
                t1 = clock()
                if not chunk:
                    break
                position = cutter.next_position
                pieces = cutter.lines(chunk) or []
                t2 = clock()
                docs, _ = parser.parse_lines(pieces, position)
                t3 = clock()
                data = encode_lines(docs)
                t4 = clock()
                out.write(data)
                t5 = clock()
                for i, (a, b) in enumerate(((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
                    spent[i] += b - a
                del chunk, pieces, docs, data  # freed before the next piece, as there
    finally:
        os.sched_setaffinity(0, affinity)
    stages = ["read", "frame", "parse", "encode", "write"]
    rows = [*zip(stages, spent, strict=True), ("startup (empty file)", startup)]
    print("s3lb parse, CPU per line by stage (stages in-process):")
    for name, seconds in rows:
        print(f"  {name:<22}{seconds / lines * 1e6:>7.2f} us")
    total = sum(spent) + startup
    print(f"  {'sum':<22}{total / lines * 1e6:>7.2f} us (whole process: {whole / lines * 1e6:.2f})")


def in_process(quick: bool) -> None:
    """The per-format table (information)."""
    alb_lines = ALB_LINES // 4 if quick else ALB_LINES
    other_lines = OTHER_LINES // 5 if quick else OTHER_LINES
    print(f"python {sys.version.split()[0]}, msgspec {msgspec.__version__}; best of 2 runs")
    print(f"{'format':<22}{'lines':>9}{'lines/s':>12}{'us/line':>9}")

    def report(label: str, seconds: float, done: int) -> float:
        rate = done / seconds
        print(f"{label:<22}{done:>9}{rate:>12,.0f}{seconds / done * 1e6:>9.2f}")
        return rate

    alb_modern = [line for line in lines_of("alb.log") if line.count(b'"') >= 30][:16]
    alb = repeat_to(alb_modern, alb_lines)
    ours = report("alb (s3lb)", *timed(s3lb_run("alb", alb)))
    athena = report("alb naive: athena re", *timed(naive_run(ATHENA_ALB, alb)))
    seed = report("alb naive: seed re", *timed(naive_run(SEED_ALB, alb)))
    mixed = repeat_to(lines_of("alb.log"), alb_lines // 2)
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
        report(fmt, *timed(s3lb_run(fmt, repeat_to(lines_of(name), other_lines))))
    raws, data = cloudtrail_lines(other_lines * 2 // 5)
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


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--quick", action="store_true", help="fewer lines (100,000 whole-process)")
    cli.add_argument("--lines", type=int, help="ALB lines of the whole-process input")
    cli.add_argument("--repeats", type=int, default=3, help="alternating runs of each command")
    cli.add_argument("--skip-in-process", action="store_true", help="only the whole processes")
    args = cli.parse_args()
    lines = args.lines or (100_000 if args.quick else 500_000)
    if not args.skip_in_process:
        in_process(args.quick)
        print()
    ratio = whole_process(lines, args.repeats)
    met = "met" if ratio >= TARGET else "NOT met"
    print(f"RATIO parse whole process s3lb/naive: {ratio:.2f} (target >= {TARGET}: {met})")


if __name__ == "__main__":
    main()
