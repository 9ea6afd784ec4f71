"""``s3lb replay-dead-letter``: send rejected documents again, then forget what got in.

Once the cause of a rejection is fixed (a mapping, a full disk, a closed index), this
re-sends every ``rejected`` entry of the dead-letter store, each with its original
``_index`` and ``_id`` under ``create``: a document that got in meanwhile is answered
409 and counted as already there, never indexed twice. Entries that got in (or were
there) are removed; one rejected again is dead-lettered anew with its new reason;
one the cluster could not settle before ``--timeout`` is kept. Entries without a
document (lines that could not be parsed) are kept as they are.

Sources: the files under ``state_dir/dead-letter/`` and, when configured,
``output.elasticsearch.dead_letter_index``. Files are claimed by renaming them
(``*.replaying``) while holding the lock the daemon takes to write, so a running
daemon keeps dead-lettering safely into a new file; what is kept is written to a
new ``dead-letter-*.kept-*.ndjson`` file. A replay cut short (kill, crash) leaves its
claimed files, which the next replay picks up again.

Exit status: 0 when every replayable entry got in, 1 otherwise.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import msgspec
import trio

from s3lb.acks import BulkItem, ObjectTracker
from s3lb.config import ElasticsearchOutput, load, parse_duration
from s3lb.deadletter import DeadLetter
from s3lb.errors import ConfigError, S3lbError, SinkUnavailable
from s3lb.model import ObjectRef
from s3lb.sinks.elasticsearch.sink import ElasticsearchSink
from s3lb.telemetry import Telemetry

__all__ = ["ReplayReport", "add_parser", "replay"]

_BATCH = 500
_SCROLL = "2m"
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def add_parser(commands: Any) -> None:
    """Register ``replay-dead-letter`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "replay-dead-letter",
        help="send dead-lettered documents again with their original ids",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--timeout",
        default="5m",
        help="give up on what is not settled after this long (default 5m); it is kept",
    )
    parser.set_defaults(func=_run)


@dataclass
class ReplayReport:
    """What a replay did, per outcome."""

    counts: Counter[str] = field(default_factory=Counter)
    #: Entries left in place because they hold no document (parse failures…).
    not_replayable: Counter[str] = field(default_factory=Counter)

    @property
    def complete(self) -> bool:
        """Every replayable entry got in (indexed, or already there)."""
        return not (self.counts["rejected"] or self.counts["unsettled"])

    def summary(self) -> str:
        """One line for the operator."""
        c = self.counts
        sent = c["indexed"] + c["duplicate"] + c["rejected"] + c["unsettled"]
        text = (
            f"replayed {sent} documents: {c['indexed']} indexed, {c['duplicate']} already "
            f"there, {c['rejected']} rejected again (dead-lettered anew), "
            f"{c['unsettled']} not settled (kept)"
        )
        if self.not_replayable:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.not_replayable.items()))
            text += f"; kept without replay: {kinds}"
        return text


class ReplayBusy(S3lbError):
    """Another replay holds the dead-letter directory."""


@dataclass(slots=True)
class _Pending:
    """A replayable entry on its way: where it came from and its tracker."""

    item: BulkItem
    origin: Any  # the raw file line, or the dead_letter_index entry's _id


async def replay(
    output: ElasticsearchOutput,
    state_dir: Path,
    telemetry: Telemetry,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ReplayReport:
    """Replay the dead-letter files and ``dead_letter_index``; see the module doc.

    Raises:
        ReplayBusy: another replay is running on this state directory.
        SinkUnavailable: the dead-letter index cannot be read.
    """
    directory = state_dir / "dead-letter"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    report = ReplayReport()
    dead_letter = DeadLetter(directory)
    sink = ElasticsearchSink(output, telemetry, dead_letter, transport)
    deadline = trio.current_time() + timeout
    with _replay_lock(directory):
        try:
            await _replay_files(sink, directory, deadline, report)
            if output.dead_letter_index:
                await _replay_index(sink, output.dead_letter_index, deadline, report)
        finally:
            with trio.CancelScope(shield=True):
                await sink.aclose()
            dead_letter.close()
    return report


@contextmanager
def _replay_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory/.replay.lock`` for the whole replay.

    Raises:
        ReplayBusy: another replay holds it.
    """
    with open(directory / ".replay.lock", "ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReplayBusy(f"another replay is running on {directory}") from None
        yield


def claim_files(directory: Path) -> list[Path]:
    """Rename each dead-letter file to ``*.replaying`` under the writers' lock; return
    those, with the ones an interrupted replay left."""
    claimed = sorted(directory.glob("dead-letter-*.ndjson.replaying"))
    for path in sorted(directory.glob("dead-letter-*.ndjson")):
        target = path.with_name(path.name + ".replaying")
        fd = os.open(path, os.O_RDONLY)
        try:
            # A writer checks, under this lock, that its file still has its name.
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(path, target)
        finally:
            os.close(fd)
        claimed.append(target)
    return claimed


def _pending_from(entry: Any, origin: Any, names: tuple[str, str]) -> _Pending | None:
    """The replayable item of a dead-letter entry, or None (no valid document)."""
    if not isinstance(entry, dict) or entry.get("kind") != "rejected":
        return None
    index, doc_id = entry.get(names[0]), entry.get(names[1])
    document = entry.get("document")
    if not (isinstance(index, str) and isinstance(doc_id, str) and isinstance(document, str)):
        return None
    source = document.encode()
    try:
        if not isinstance(_decoder.decode(source), dict):
            return None
    except msgspec.DecodeError:
        return None  # cut short (a crash mid-write): it would break the bulk body
    ref = ObjectRef(
        str(entry.get("bucket", "")), str(entry.get("key", "")), str(entry.get("version", ""))
    )
    tracker = ObjectTracker(ref, lambda _t: None)
    tracker.add(1)
    position = entry.get("position")
    item = BulkItem(index, doc_id, source, tracker, position if isinstance(position, int) else 0)
    return _Pending(item, origin)


async def _deliver(
    sink: ElasticsearchSink, batch: list[_Pending], deadline: float, report: ReplayReport
) -> tuple[list[_Pending], list[_Pending]]:
    """Send ``batch`` until ``deadline``; return (got in, not settled)."""
    if batch and trio.current_time() < deadline:
        with trio.move_on_at(deadline):
            await sink.deliver([p.item for p in batch])
    got_in, unsettled = [], []
    for pending in batch:
        counts = pending.item.tracker.counts
        outcome = next(iter(counts), "unsettled")
        report.counts[outcome] += 1
        if outcome in ("indexed", "duplicate"):
            got_in.append(pending)
        elif outcome == "unsettled":
            unsettled.append(pending)
    return got_in, unsettled


async def _replay_files(
    sink: ElasticsearchSink, directory: Path, deadline: float, report: ReplayReport
) -> None:
    claimed = claim_files(directory)
    if not claimed:
        return
    stamp = time.strftime("%Y-%m-%d.kept-%H%M%S", time.gmtime())
    kept_path = directory / f"dead-letter-{stamp}-{os.getpid()}.ndjson"
    tmp = kept_path.with_name(kept_path.name + ".tmp")
    try:
        kept = await _sort_out(sink, claimed, tmp, deadline, report)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the claimed files are still there for the next run
        raise
    # Kept entries are safe in their new file before the claimed ones go.
    if kept:
        os.rename(tmp, kept_path)
    else:
        tmp.unlink()
    for path in claimed:
        path.unlink()


async def _sort_out(
    sink: ElasticsearchSink,
    claimed: list[Path],
    tmp: Path,
    deadline: float,
    report: ReplayReport,
) -> int:
    """Replay the entries of ``claimed``; write those to keep to ``tmp``; count them."""
    kept = 0
    with open(tmp, "wb") as out:
        os.chmod(tmp, 0o600)
        for path in claimed:
            batch: list[_Pending] = []
            for line in _lines(path):
                try:
                    entry = _decoder.decode(line)
                except msgspec.DecodeError:
                    entry = None
                pending = _pending_from(entry, line, ("_index", "_id"))
                if pending is None:
                    kind = entry.get("kind") if isinstance(entry, dict) else None
                    report.not_replayable[str(kind or "unreadable")] += 1
                    out.write(line if line.endswith(b"\n") else line + b"\n")
                    kept += 1
                    continue
                batch.append(pending)
                if len(batch) >= _BATCH:
                    kept += _keep(out, (await _deliver(sink, batch, deadline, report))[1])
                    batch = []
            kept += _keep(out, (await _deliver(sink, batch, deadline, report))[1])
        out.flush()
        os.fsync(out.fileno())
    return kept


def _keep(out: BinaryIO, unsettled: list[_Pending]) -> int:
    for pending in unsettled:
        line = pending.origin
        out.write(line if line.endswith(b"\n") else line + b"\n")
    return len(unsettled)


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield line


async def _replay_index(
    sink: ElasticsearchSink, index: str, deadline: float, report: ReplayReport
) -> None:
    async with aclosing(_scroll(sink, index)) as pages:
        async for hits in pages:
            await _replay_page(sink, index, hits, deadline, report)
            if trio.current_time() >= deadline:
                break
    await sink.cluster.request("POST", f"/{index}/_refresh")


async def _replay_page(
    sink: ElasticsearchSink,
    index: str,
    hits: list[dict[str, Any]],
    deadline: float,
    report: ReplayReport,
) -> None:
    batch: list[_Pending] = []
    for hit in hits:
        pending = _pending_from(hit.get("_source"), hit.get("_id"), ("index", "id"))
        if pending is None:
            source = hit.get("_source")
            kind = source.get("kind") if isinstance(source, dict) else None
            report.not_replayable[str(kind or "unreadable")] += 1
        else:
            batch.append(pending)
    got_in, _ = await _deliver(sink, batch, deadline, report)
    # A document rejected again was re-written under the same entry id: it stays.
    await _delete_entries(sink, index, [p.origin for p in got_in])


async def _scroll(sink: ElasticsearchSink, index: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The entries of ``index``, a page at a time (a scroll: deleting as we go is safe)."""
    cluster = sink.cluster
    response = await cluster.request(
        "POST",
        f"/{index}/_search?scroll={_SCROLL}",
        json={"size": _BATCH, "sort": ["_doc"], "query": {"match_all": {}}},
    )
    if response.status_code == 404:
        return  # no entry was ever written
    scroll_id = None
    try:
        while True:
            if response.status_code != 200:
                raise SinkUnavailable(
                    f"reading {index}: HTTP {response.status_code}: {response.text[:300]}"
                )
            page = response.json()
            scroll_id = page.get("_scroll_id")
            hits = page.get("hits", {}).get("hits", [])
            if not hits:
                return
            yield hits
            response = await cluster.request(
                "POST", "/_search/scroll", json={"scroll": _SCROLL, "scroll_id": scroll_id}
            )
    finally:
        if scroll_id:
            # Not fatal when it fails: the scroll expires on its own.
            with trio.CancelScope(shield=True), suppress(SinkUnavailable):
                await cluster.request("DELETE", "/_search/scroll", json={"scroll_id": [scroll_id]})


async def _delete_entries(sink: ElasticsearchSink, index: str, ids: list[str]) -> None:
    if not ids:
        return
    body = b"".join(
        _encoder.encode({"delete": {"_index": index, "_id": entry_id}}) + b"\n" for entry_id in ids
    )
    response = await sink.cluster.request(
        "POST", "/_bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    if response.status_code != 200:
        # Not fatal: a later replay finds them and they come back as 409s.
        sink.telemetry.warning(
            "could not remove replayed entries from the dead-letter index",
            status=response.status_code,
            entries=len(ids),
        )


def _run(args: argparse.Namespace) -> int:
    from s3lb.cli.main import run_trio  # the CLI's trio.run, which unwraps our errors

    config, warnings = load(args.config)
    telemetry = Telemetry()
    for warning in warnings:
        telemetry.warning("configuration: " + warning, file=args.config)
    output = config.output.elasticsearch
    if output is None or not output.enabled:
        raise ConfigError("replay-dead-letter needs output.elasticsearch", "output")
    try:
        timeout = parse_duration(args.timeout)
    except ValueError as exc:
        raise ConfigError(str(exc), "--timeout") from None
    return run_trio(_replay_and_report, output, Path(config.settings.state_dir), telemetry, timeout)


async def _replay_and_report(
    output: ElasticsearchOutput, state_dir: Path, telemetry: Telemetry, timeout: float
) -> int:
    try:
        report = await replay(output, state_dir, telemetry, timeout)
    except (ReplayBusy, SinkUnavailable) as exc:
        print(f"s3lb replay-dead-letter: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.complete else 1
