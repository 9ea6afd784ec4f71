"""``s3lb state`` rendering: the JSON document's shape and the human table."""

from __future__ import annotations

import json
from datetime import datetime

from s3lb.checkpoint import ImportCursor, ObjectState, RecordCounts, StoreUsage
from s3lb.cli.state_view import render_state

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z

OBJECTS = [
    ObjectState(
        bucket="logs",
        key="alb/2024/05/01/a.log.gz",
        version="etag-a",
        status="done",
        acked=120,
        offset=-1,
        total=120,
        records=RecordCounts(indexed=118, duplicate=1, rejected=1),
        started=T0 - 60,
        updated=T0,
    ),
    ObjectState(
        bucket="logs",
        key="alb/2024/05/01/b.log",
        version="etag-b",
        acked=40,
        offset=8192,
        started=T0,
        updated=T0 + 1.5,
    ),
    ObjectState(
        bucket="logs",
        key="gone.log",
        version="v9",
        status="failed",
        error="NoSuchKey",
        updated=T0 + 2,
    ),
]
CURSORS = [ImportCursor(job="alb-may", last_key="alb/2024/05/01/b.log", done=7, updated=T0)]
USAGE = StoreUsage(
    path="/var/lib/s3lb/checkpoint", map_size=1 << 30, used_bytes=3 << 20, objects=3, imports=1
)


def test_json_lists_every_object_with_the_documented_fields() -> None:
    """``objects: [{bucket, key, status, acked, updated, ...}]`` plus imports and store."""
    doc = json.loads(render_state(OBJECTS, CURSORS, True, usage=USAGE))
    assert set(doc) == {"store", "objects", "imports"}
    first = doc["objects"][0]
    assert first == {
        "bucket": "logs",
        "key": "alb/2024/05/01/a.log.gz",
        "version": "etag-a",
        "status": "done",
        "acked": 120,
        "offset": -1,
        "total": 120,
        "records": {"indexed": 118, "duplicate": 1, "rejected": 1, "parse_failed": 0},
        "error": "",
        "started": "2024-05-01T11:59:00.000Z",
        "updated": "2024-05-01T12:00:00.000Z",
    }
    assert [o["status"] for o in doc["objects"]] == ["done", "in_progress", "failed"]
    assert doc["objects"][2]["started"] is None  # never stamped
    assert doc["imports"] == [
        {
            "job": "alb-may",
            "last_key": "alb/2024/05/01/b.log",
            "done": 7,
            "failed": 0,
            "complete": False,
            "updated": "2024-05-01T12:00:00.000Z",
        }
    ]
    assert doc["store"]["used_bytes"] == 3 << 20
    assert datetime.fromisoformat(first["updated"]).timestamp() == T0


def test_json_of_an_empty_store_is_still_one_document() -> None:
    """No store yet: empty lists and ``store: null``, one line ending in a newline."""
    text = render_state([], [], True)
    assert text.endswith("\n") and text.count("\n") == 1
    assert json.loads(text) == {"store": None, "objects": [], "imports": []}


def test_the_table_puts_unfinished_objects_first() -> None:
    """In progress, then failed, then done; one row each with status, acked, URI."""
    text = render_state(OBJECTS, CURSORS, False, usage=USAGE)
    lines = text.splitlines()
    assert lines[0] == "checkpoint store /var/lib/s3lb/checkpoint: 3.0 MiB used of 1.0 GiB (0%)"
    assert lines[1] == "objects: 3 (1 in_progress, 1 failed, 1 done)"
    assert lines[2].split() == [
        "STATUS",
        "ACKED",
        "OFFSET",
        "UPDATED",
        "VERSION",
        "OBJECT",
        "ERROR",
    ]
    rows = [line.split() for line in lines[3:6]]
    assert rows[0] == [
        "in_progress",
        "40",
        "8192",
        "2024-05-01T12:00:01.500Z",
        "etag-b",
        "s3://logs/alb/2024/05/01/b.log",
    ]
    assert rows[1][0] == "failed" and rows[1][-1] == "NoSuchKey"
    assert rows[2][:3] == ["done", "120", "-"]  # compressed: no byte offset
    assert "imports: 1" in lines
    assert any(line.split()[:3] == ["alb-may", "incomplete", "7"] for line in lines)


def test_the_table_caps_done_rows_but_counts_them() -> None:
    """Thousands of done objects do not drown the in-flight ones."""
    done = [
        ObjectState(bucket="b", key=f"k{i}", version="v", status="done", updated=T0 + i)
        for i in range(10)
    ]
    text = render_state(done, [], False, max_done_rows=3)
    assert "s3://b/k9" in text and "s3://b/k7" in text and "s3://b/k6" not in text
    assert "... and 7 older done objects (--json lists all)" in text


def test_the_table_keeps_one_row_per_object_whatever_the_key() -> None:
    """Newlines and escapes in keys are shown escaped; non-ASCII stays readable."""
    odd = ObjectState(bucket="b", key="a\nb\x1b[31m/é", version="v")
    text = render_state([odd], [], False)
    assert len(text.splitlines()) == 3
    assert "s3://b/a\\nb\\x1b[31m/é" in text


def test_an_empty_store_renders_a_summary_only() -> None:
    """Nothing stored: a one-line summary, no table header."""
    assert render_state([], [], False) == "objects: 0 (0 in_progress, 0 failed, 0 done)\n"


LONG_KEY = "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/" + "x" * 90 + ".log.gz"
LONG = [
    ObjectState(
        bucket="logs",
        key=LONG_KEY,
        version="etag-long",
        acked=1,
        offset=10,
        error="",
        updated=T0,
    ),
    ObjectState(
        bucket="logs",
        key="short.log",
        version="v2",
        status="failed",
        error="S3 GET s3://logs/short.log: HTTP 403 AccessDenied: " + "denied " * 20,
        updated=T0,
    ),
]


def test_a_width_cuts_keys_in_the_middle_keeping_their_tail() -> None:
    """A terminal of 120 columns: each row fits, the key's file name stays readable."""
    text = render_state(LONG, [], False, width=120)
    rows = [line for line in text.splitlines() if line.startswith(("STATUS", "in_", "failed"))]
    assert len(rows) == 3
    assert all(len(row) <= 120 for row in rows), rows
    shown = rows[1].split()[5]
    assert shown.startswith("s3://") and "…" in shown
    assert shown.endswith("x" * 20 + ".log.gz")
    assert rows[2].split()[5] == "s3://logs/short.log"  # short keys are left whole
    assert rows[2].endswith("…")  # the error gives up its end first


def test_without_a_width_or_in_json_nothing_is_cut() -> None:
    assert f"s3://logs/{LONG_KEY}" in render_state(LONG, [], False)
    assert "…" not in render_state(LONG, [], False)
    doc = json.loads(render_state(LONG, [], True, width=40))
    assert doc["objects"][0]["key"] == LONG_KEY


def test_a_wide_terminal_leaves_the_table_as_it_is() -> None:
    assert render_state(LONG, CURSORS, False, width=1000) == render_state(LONG, CURSORS, False)


def test_import_jobs_fit_the_width_too() -> None:
    cursors = [ImportCursor(job="inputs[0] s3://logs/" + "p" * 100, last_key=LONG_KEY, done=1)]
    text = render_state([], cursors, False, width=100)
    rows = text.splitlines()[-2:]
    assert all(len(row) <= 100 for row in rows), rows
    assert rows[1].endswith(".log.gz")


def test_the_shares_of_a_multi_process_import_are_one_job_row() -> None:
    """Shares are summed into their job: complete when all are, the least last key
    once every share has one; another number of processes is another row."""
    job = "alb s3://logs/alb/ since=- to=-"
    cursors = [
        ImportCursor(job=f"{job} share=1/2", last_key="alb/c.log", done=3, complete=True),
        ImportCursor(job=f"{job} share=2/2", last_key="alb/b.log", done=2, failed=1),
        ImportCursor(job=f"{job} share=1/3", last_key="alb/a.log", done=1, updated=T0),
    ]
    lines = render_state([], cursors, False).splitlines()
    assert "imports: 2" in lines
    rows = [line.split()[-6:] for line in lines if line.startswith(job)]
    assert sorted(rows) == sorted(
        [
            ["incomplete", "5", "1", "1/2", "-", "alb/b.log"],
            ["incomplete", "1", "0", "0/3", "2024-05-01T12:00:00.000Z", "-"],
        ]
    )
