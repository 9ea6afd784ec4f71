"""The LMDB checkpoint store: durability, failure recovery, readers, and the R22 model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import lmdb
import msgspec
import pytest
import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from s3lb.acks import Watermark
from s3lb.checkpoint import (
    CheckpointStore,
    ImportCursor,
    LmdbStore,
    ObjectState,
    RecordCounts,
    _lmdb,
    _open,
    _store,
    open_checkpoint_store,
    open_store,
    open_store_readonly,
)
from s3lb.checkpoint._lmdb import store_dir
from s3lb.checkpoint.records import merge_states, object_key
from s3lb.errors import CheckpointCorrupt, CheckpointError, CheckpointFull
from tests.paths import REPO

NOW = 1_700_000_000.0


def state(key: str = "k", **fields: object) -> ObjectState:
    return ObjectState(bucket="b", key=key, version="v1", **fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStore]:
    s = open_store(tmp_path / "state", verify="off")
    yield s
    s.close()


def run_python(code: str, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that can import s3lb."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        **kwargs,
    )


# --- round trips and merge rules ------------------------------------------------------


def test_a_committed_state_reads_back_with_store_stamps(store: LmdbStore) -> None:
    """Every field round-trips; the store stamps started/updated with ``now``."""
    written = state(
        acked=7,
        offset=700,
        total=9,
        records=RecordCounts(indexed=5, duplicate=1, rejected=1, parse_failed=0),
        error="",
    )
    store.commit([written], now=NOW)
    got = store.get("b", "k", "v1")
    assert got == msgspec.structs.replace(written, started=NOW, updated=NOW)
    assert store.get("b", "k", "other-version") is None
    assert store.objects() == [got]


def test_an_import_cursor_round_trips_and_is_listed(store: LmdbStore) -> None:
    """A cursor is found by job id, stamped, and listed."""
    store.put_cursor(ImportCursor(job="j1", last_key="2024/01/a.gz", done=3), now=NOW)
    store.commit(cursors=[ImportCursor(job="j2", complete=True)], now=NOW)
    assert store.get_cursor("j1") == ImportCursor(
        job="j1", last_key="2024/01/a.gz", done=3, updated=NOW
    )
    assert store.get_cursor("nope") is None
    assert [c.job for c in store.cursors()] == ["j1", "j2"]


def test_a_commit_writes_states_and_cursors_atomically_together(store: LmdbStore) -> None:
    """One commit carries objects and the import cursor that handed them out."""
    store.commit([state("a"), state("b")], [ImportCursor(job="j", last_key="b")])
    assert len(store.objects()) == 2
    assert store.get_cursor("j") is not None


def test_long_keys_and_keys_with_nul_are_distinct_and_round_trip(store: LmdbStore) -> None:
    """Keys past LMDB's 511-byte limit, or holding NUL, are hashed without collisions."""
    long_key = "logs/" + "é" * 600
    tricky = [state(long_key), state(long_key + "x"), state("a\0b"), state("a")]
    store.commit(tricky)
    for s in tricky:
        got = store.get("b", s.key, "v1")
        assert got is not None and got.key == s.key
    assert object_key("b", long_key, "v1").startswith(b"\xff")
    assert object_key("b", "a\0b", "") != object_key("b", "a", "\0b")
    assert len(store.objects()) == 4


def test_merge_keeps_done_final() -> None:
    """A late in-progress write cannot reopen a done object."""
    done = state(status="done", acked=10, total=10, updated=5.0)
    assert merge_states(done, state(acked=3), NOW) is done


def test_merge_never_moves_the_watermark_back() -> None:
    """A stale commit keeps the stored prefix, offset and counts, takes the rest."""
    old = state(acked=10, offset=100, records=RecordCounts(indexed=10), started=1.0, updated=2.0)
    merged = merge_states(old, state(acked=4, offset=40, status="failed", error="gone"), NOW)
    assert (merged.acked, merged.offset, merged.records) == (10, 100, RecordCounts(indexed=10))
    assert (merged.status, merged.error, merged.started, merged.updated) == (
        "failed",
        "gone",
        1.0,
        NOW,
    )


def test_merge_takes_a_newer_watermark_and_keeps_the_first_start() -> None:
    """Progress replaces the stored state; ``started`` is the first commit's time."""
    old = state(acked=4, started=1.0, updated=2.0)
    merged = merge_states(old, state(acked=9, offset=90), NOW)
    assert (merged.acked, merged.offset, merged.started, merged.updated) == (9, 90, 1.0, NOW)


# --- durability ----------------------------------------------------------------------


def test_commits_survive_close_and_reopen(tmp_path: Path) -> None:
    """What was committed is there after the store is closed and opened again."""
    s = open_store(tmp_path)
    s.commit([state(acked=3, offset=30)], now=NOW)
    s.close()
    s = open_store(tmp_path)
    try:
        assert s.get("b", "k", "v1") == state(acked=3, offset=30, started=NOW, updated=NOW)
    finally:
        s.close()


def test_a_commit_survives_an_immediate_hard_exit(tmp_path: Path) -> None:
    """kill -9 right after commit (os._exit, no cleanup at all) loses nothing."""
    proc = run_python(
        """
        import os, sys
        from s3lb.checkpoint import ObjectState, open_store
        store = open_store(sys.argv[1], verify="off")
        store.commit([ObjectState(bucket="b", key="k", version="v1", acked=42, offset=4200)])
        os._exit(137)
        """,
        str(tmp_path),
    )
    assert proc.returncode == 137, proc.stderr
    s = open_store(tmp_path)
    try:
        got = s.get("b", "k", "v1")
        assert got is not None and (got.acked, got.offset) == (42, 4200)
    finally:
        s.close()


def test_sigkill_between_commits_keeps_every_acknowledged_commit(tmp_path: Path) -> None:
    """SIGKILL at a random moment: the store holds the last commit reported done, or
    one more, and opens cleanly (commits are atomic)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = textwrap.dedent(
        """
        import sys
        from s3lb.checkpoint import ObjectState, open_store
        store = open_store(sys.argv[1], verify="off")
        n = 0
        while True:
            n += 1
            batch = [ObjectState(bucket="b", key=f"k{i}", version="v", acked=n) for i in range(5)]
            store.commit(batch)
            print(n, flush=True)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        last = 0
        for line in proc.stdout:
            last = int(line)
            if last >= 200:
                break
        proc.send_signal(signal.SIGKILL)
        for line in proc.stdout:
            last = int(line)
    assert proc.returncode == -signal.SIGKILL
    s = open_store(tmp_path, on_corrupt="raise")
    try:
        stored = {o.acked for o in s.objects()}
        assert len(stored) == 1, "a commit was torn"
        assert stored.pop() in (last, last + 1)
    finally:
        s.close()


# --- failures and recovery -----------------------------------------------------------


def test_a_full_map_raises_checkpoint_full_and_writes_nothing(tmp_path: Path) -> None:
    """MDB_MAP_FULL: CheckpointFull naming the fix; the failed batch left no trace;
    a bigger map_size on reopen makes the store usable again with its data."""
    s = open_store(tmp_path, map_size=64 * 1024, verify="off")
    committed = 0
    with pytest.raises(CheckpointFull, match=r"checkpoint\.map_size") as caught:
        for i in range(10_000):
            s.commit([state(f"key-{i}-{j}", error="x" * 200) for j in range(3)])
            committed = i + 1
    assert caught.value.path == str(store_dir(tmp_path))
    assert len(s.objects()) == 3 * committed
    assert s.get("b", f"key-{committed}-0", "v1") is None
    s.close()
    s = open_store(tmp_path, map_size=8 << 20)
    try:
        s.commit([state("after")])
        assert len(s.objects()) == 3 * committed + 1
        assert s.usage().map_size == 8 << 20
    finally:
        s.close()


def _committed_store(state_dir: Path, n: int = 200) -> None:
    s = open_store(state_dir, verify="off")
    s.commit([state(f"logs/{i:05d}.gz", acked=i, error="e" * 100) for i in range(n)])
    s.close()


def _assert_quarantined(state_dir: Path, s: LmdbStore) -> None:
    assert s.quarantined is not None
    assert s.quarantined.parent == state_dir
    assert s.quarantined.name.startswith("quarantine-")
    assert (s.quarantined / "data.mdb").exists()
    assert (s.quarantined / "REASON").read_text().strip()
    # The fresh store is empty and works.
    assert s.objects() == []
    s.commit([state("fresh", acked=1)])
    assert s.get("b", "fresh", "v1") is not None


def test_a_garbage_file_is_quarantined_and_a_fresh_store_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """data.mdb overwritten with garbage: moved aside, logged loudly, empty store."""
    _committed_store(tmp_path)
    data = store_dir(tmp_path) / "data.mdb"
    data.write_bytes(os.urandom(data.stat().st_size))
    s = open_store(tmp_path)
    try:
        _assert_quarantined(tmp_path, s)
        assert any(
            r.levelname == "ERROR" and "quarantine" in r.getMessage() for r in caplog.records
        )
    finally:
        s.close()


def test_a_garbage_page_is_quarantined(tmp_path: Path) -> None:
    """Valid meta pages, one data page overwritten: the page walk finds it."""
    _committed_store(tmp_path)
    data = store_dir(tmp_path) / "data.mdb"
    raw = bytearray(data.read_bytes())
    raw[3 * 4096 : 4 * 4096] = b"\xa5" * 4096
    data.write_bytes(bytes(raw))
    s = open_store(tmp_path)
    try:
        _assert_quarantined(tmp_path, s)
    finally:
        s.close()


def test_a_truncated_file_is_quarantined(tmp_path: Path) -> None:
    """A file shorter than its pages in use would SIGBUS on read: detected first."""
    _committed_store(tmp_path)
    data = store_dir(tmp_path) / "data.mdb"
    with data.open("r+b") as f:
        f.truncate(data.stat().st_size // 2)
    for verify in ("isolated", "inline"):
        s = open_store(tmp_path, verify=verify)  # type: ignore[arg-type]
        try:
            assert s.quarantined is not None
        finally:
            s.close()
        _committed_store(tmp_path)
        with data.open("r+b") as f:
            f.truncate(data.stat().st_size // 2)


def test_an_undecodable_value_is_quarantined(tmp_path: Path) -> None:
    """LMDB is fine but a value is not an ObjectState: corrupt too."""
    _committed_store(tmp_path)
    env = lmdb.open(str(store_dir(tmp_path)), max_dbs=4)
    db = env.open_db(b"objects")
    with env.begin(write=True, db=db) as txn:
        txn.put(object_key("b", "bad", "v1"), b"\xc1 not msgpack")
    env.close()
    s = open_store(tmp_path)
    try:
        _assert_quarantined(tmp_path, s)
    finally:
        s.close()


def test_corruption_with_on_corrupt_raise_moves_nothing(tmp_path: Path) -> None:
    """``on_corrupt="raise"``: CheckpointCorrupt and the store stays where it is."""
    _committed_store(tmp_path)
    data = store_dir(tmp_path) / "data.mdb"
    data.write_bytes(b"\0garbage" * 4096)
    with pytest.raises(CheckpointCorrupt) as caught:
        open_store(tmp_path, on_corrupt="raise")
    assert caught.value.path == str(store_dir(tmp_path))
    assert data.exists()
    assert not list(tmp_path.glob("quarantine-*"))


def _killed_by(name: str) -> list[str]:
    """A checker that dies of signal ``name``, as a damaged page or an operator would."""
    return [sys.executable, "-c", f"import os, signal; os.kill(os.getpid(), signal.{name})"]


def test_a_checker_crash_counts_as_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged page can SIGSEGV/SIGBUS the reader: the isolated check survives that
    and the store is quarantined instead of crash-looping the daemon."""
    _committed_store(tmp_path)
    monkeypatch.setattr(_open, "checker_command", lambda _p: _killed_by("SIGBUS"))
    s = open_store(tmp_path)
    try:
        assert s.quarantined is not None
        assert "SIGBUS" in (s.quarantined / "REASON").read_text()
    finally:
        s.close()


def test_an_interrupted_checker_never_quarantines_a_good_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checker killed by SIGTERM (or failing to start) is inconclusive: the store is
    checked in-process and kept."""
    _committed_store(tmp_path, n=10)
    monkeypatch.setattr(_open, "checker_command", lambda _p: _killed_by("SIGTERM"))
    s = open_store(tmp_path)
    try:
        assert s.quarantined is None
        assert len(s.objects()) == 10
    finally:
        s.close()


def test_a_newer_schema_is_refused_not_quarantined(tmp_path: Path) -> None:
    """A store written by a newer s3lb is left alone with a clear error."""
    _committed_store(tmp_path, n=1)
    env = lmdb.open(str(store_dir(tmp_path)), max_dbs=4)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"schema", b"99")
    env.close()
    with pytest.raises(CheckpointError, match="newer") as caught:
        open_store(tmp_path)
    assert not isinstance(caught.value, CheckpointCorrupt)
    assert not list(tmp_path.glob("quarantine-*"))


def _try_open(state_dir: Path) -> dict[str, str]:
    try:
        open_store(state_dir).close()
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": ""}


def _open_without_write_access(state_dir: Path) -> dict[str, str]:
    """Try ``open_store`` where the opener may not write.

    Root ignores permissions, so as root the attempt runs in a forked child that
    became ``nobody`` (no exec: the interpreter may live where nobody cannot read).
    """
    if os.geteuid() != 0:
        return _try_open(state_dir)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork() with threads alive (trio's thread cache);
        # the child only opens a store and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, json.dumps(_try_open(state_dir)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    return json.loads(output)  # type: ignore[no-any-return]


def _deny_writes(*paths: Path) -> None:
    # Root ignores permissions, so as root the opener runs as nobody: the paths stay
    # readable (r-x / r--) but are not theirs.
    for p in paths:
        if p.is_dir():
            p.chmod(0o755 if os.geteuid() == 0 else 0o555)
        else:
            p.chmod(0o644 if os.geteuid() == 0 else 0o444)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary directory another user can traverse (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    yield base
    for p in [base, *base.rglob("*")]:
        p.chmod(0o700 if p.is_dir() else 0o600)
    shutil.rmtree(base)


def test_an_unwritable_parent_is_a_clear_error(shared_tmp: Path) -> None:
    """state_dir cannot be created: CheckpointError naming the path and the fix."""
    parent = shared_tmp / "ro"
    parent.mkdir()
    _deny_writes(parent)
    result = _open_without_write_access(parent / "state")
    assert result["error"] == "CheckpointError"
    assert str(parent / "state") in result["message"]
    assert "writable" in result["message"]


def test_a_read_only_store_is_a_clear_error_and_stays_intact(shared_tmp: Path) -> None:
    """An existing store the user may not write: CheckpointError, never a quarantine."""
    state_dir = shared_tmp / "state"
    _committed_store(state_dir, n=3)
    ckpt = store_dir(state_dir)
    _deny_writes(state_dir, ckpt, ckpt / "data.mdb", ckpt / "lock.mdb")
    result = _open_without_write_access(state_dir)
    assert result["error"] == "CheckpointError"
    assert "writable" in result["message"]
    assert not list(state_dir.glob("quarantine-*"))
    for p in (state_dir, ckpt, ckpt / "data.mdb", ckpt / "lock.mdb"):
        p.chmod(0o700 if p.is_dir() else 0o600)
    s = open_store(state_dir)
    try:
        assert len(s.objects()) == 3
    finally:
        s.close()


def test_files_are_0600_in_a_0700_directory_whatever_the_umask(tmp_path: Path) -> None:
    """Checkpoints name buckets and keys: private to the daemon's user."""
    old = os.umask(0)
    try:
        open_store(tmp_path / "state", verify="off").close()
    finally:
        os.umask(old)
    ckpt = store_dir(tmp_path / "state")
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o700
    for name in ("data.mdb", "lock.mdb"):
        assert stat.S_IMODE((ckpt / name).stat().st_mode) == 0o600


# --- readers ---------------------------------------------------------------------------


def test_a_missing_store_reads_as_none(tmp_path: Path) -> None:
    """``s3lb state`` before the daemon ever ran: no store, not an error."""
    assert open_store_readonly(tmp_path) is None
    assert not (tmp_path / "checkpoint").exists()


def test_a_reader_sees_commits_of_a_live_writer_in_another_process(tmp_path: Path) -> None:
    """A read-only opener never blocks the daemon and sees each new commit."""
    code = """
        import sys
        from s3lb.checkpoint import ObjectState, open_store
        store = open_store(sys.argv[1], map_size=1 << 24, verify="off")
        for line in sys.stdin:
            store.commit([ObjectState(bucket="b", key="k", version="v1", acked=int(line))])
            print("ok", flush=True)
        """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as writer:
        assert writer.stdin is not None and writer.stdout is not None

        def write(n: int) -> None:
            assert writer.stdin is not None and writer.stdout is not None
            writer.stdin.write(f"{n}\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "ok"

        write(1)
        reader = open_store_readonly(tmp_path)
        assert reader is not None and reader.readonly
        try:
            got = reader.get("b", "k", "v1")
            assert got is not None and got.acked == 1
            write(2)  # the writer commits while the reader's environment is open
            got = reader.get("b", "k", "v1")
            assert got is not None and got.acked == 2
            assert reader.usage().map_size == 1 << 24
            with pytest.raises(CheckpointError, match="read-only"):
                reader.commit([state()])
        finally:
            reader.close()
            writer.stdin.close()
    assert writer.returncode == 0


def test_a_reader_of_a_damaged_store_says_so(tmp_path: Path) -> None:
    """``s3lb state`` on garbage: CheckpointCorrupt, and it moves nothing."""
    _committed_store(tmp_path, n=2)
    data = store_dir(tmp_path) / "data.mdb"
    data.write_bytes(b"\x11" * data.stat().st_size)
    with pytest.raises(CheckpointCorrupt, match="next start"):
        open_store_readonly(tmp_path)
    assert data.exists()


# --- prune and usage ----------------------------------------------------------------------


def test_prune_forgets_old_finished_objects_only(store: LmdbStore) -> None:
    """Done and failed objects older than the cutoff go; recent ones and unfinished
    ones stay."""
    store.commit([state("old-done", status="done"), state("old-failed", status="failed")], now=10)
    store.commit([state("old-running")], now=10)
    store.commit([state("new-done", status="done")], now=100)
    assert store.prune(50) == 2
    assert sorted(o.key for o in store.objects()) == ["new-done", "old-running"]
    assert store.prune(50, statuses=("in_progress",)) == 1
    assert [o.key for o in store.objects()] == ["new-done"]


def test_prune_in_small_batches_misses_nothing(store: LmdbStore) -> None:
    """Batches resume where the last stopped, across kept and deleted keys."""
    store.commit(
        [state(f"{i:03d}", status="done" if i % 3 else "in_progress") for i in range(50)], now=1
    )
    total, start = 0, b""
    batches = 0
    while True:
        deleted, resume = store.prune_batch(2, start=start, limit=4)
        total += deleted
        batches += 1
        assert deleted <= 4
        if resume is None:
            break
        start = resume
    assert total == 33 and batches >= 9
    assert all(o.status == "in_progress" for o in store.objects())
    assert len(store.objects()) == 17


def test_usage_counts_entries_and_bytes(store: LmdbStore) -> None:
    """usage() reports the configured map size, bytes in use and entry counts."""
    store.commit([state("a"), state("b")], [ImportCursor(job="j")])
    usage = store.usage()
    assert (usage.objects, usage.imports, usage.map_size) == (2, 1, _lmdb.DEFAULT_MAP_SIZE)
    assert 0 < usage.used_bytes < usage.map_size


# --- the async facade ---------------------------------------------------------------------


async def test_the_async_facade_round_trips_under_trio(tmp_path: Path) -> None:
    """Every method works from trio; statistics count commits; closed means closed."""
    async with open_checkpoint_store(tmp_path) as store:
        assert isinstance(store, CheckpointStore) and store.quarantined is None
        await store.commit([state("a", acked=2)], now=NOW)
        await store.commit([state("b", status="done")], [ImportCursor(job="j")], now=1.0)
        await store.put_cursor(ImportCursor(job="j", last_key="z"))
        await store.commit([])  # nothing to write: no transaction
        got = await store.get("b", "a", "v1")
        assert got is not None and got.acked == 2
        assert [o.key for o in await store.objects()] == ["a", "b"]
        cursor = await store.get_cursor("j")
        assert cursor is not None and cursor.last_key == "z"
        assert len(await store.cursors()) == 1
        assert await store.prune(NOW) == 1
        assert (await store.usage()).objects == 1
        stats = store.statistics()
        assert (stats.commits, stats.states_written) == (3, 2)
        assert 0 < stats.commit_seconds_max <= stats.commit_seconds_total
    with pytest.raises(trio.ClosedResourceError):
        await store.get("b", "a", "v1")


async def test_lmdb_work_never_runs_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit blocked in LMDB (an fsync) leaves the loop free to run other tasks."""
    release = threading.Event()
    real_commit = LmdbStore.commit

    def slow_commit(self: LmdbStore, *args: object, **kwargs: object) -> None:
        assert release.wait(10), "the event loop was blocked by the commit"
        real_commit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LmdbStore, "commit", slow_commit)
    async with open_checkpoint_store(tmp_path, verify="off") as store:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.commit, [state(acked=5)])
                await trio.sleep(0.05)  # runs only if the loop is free
                release.set()
        got = await store.get("b", "k", "v1")
        assert got is not None and got.acked == 5


async def test_close_waits_for_a_running_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing while a commit is in its thread waits for it, even when cancelled."""
    release = threading.Event()
    real_commit = LmdbStore.commit

    def slow_commit(self: LmdbStore, *args: object, **kwargs: object) -> None:
        release.wait(10)
        real_commit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LmdbStore, "commit", slow_commit)
    with trio.fail_after(10):
        async with (
            trio.open_nursery() as nursery,
            open_checkpoint_store(tmp_path, verify="off") as store,
        ):
            nursery.start_soon(store.commit, [state(acked=9)])
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
            threading.Timer(0.1, release.set).start()
        # aclose() ran first, under cancellation: it waited for the commit to finish.
    s = open_store(tmp_path, verify="off")
    try:
        got = s.get("b", "k", "v1")
        assert got is not None and got.acked == 9
    finally:
        s.close()


async def test_the_facade_prunes_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prune releases the write lock between batches and still deletes everything."""
    monkeypatch.setattr(_store, "PRUNE_BATCH", 3)
    async with open_checkpoint_store(tmp_path, verify="off") as store:
        await store.commit([state(f"{i}", status="done") for i in range(10)], now=1.0)
        assert await store.prune(2.0) == 10
        assert await store.objects() == []


async def test_a_corrupt_store_is_quarantined_by_the_async_opener(tmp_path: Path) -> None:
    """The daemon's opener reports where the corrupt store went."""
    _committed_store(tmp_path, n=5)
    (store_dir(tmp_path) / "data.mdb").write_bytes(os.urandom(64 * 1024))
    async with open_checkpoint_store(tmp_path) as store:
        assert store.quarantined is not None
        assert await store.objects() == []


# --- R22: acks, commits and crashes against the real store ---------------------------------


@st.composite
def record_ends(draw: st.DrawFn) -> list[int]:
    sizes = draw(st.lists(st.integers(1, 300), min_size=1, max_size=25))
    ends, total = [], 0
    for size in sizes:
        total += size
        ends.append(total)
    return ends


@settings(max_examples=40, stateful_step_count=40, deadline=None)
class CheckpointModel(RuleBasedStateMachine):
    """One object read, acked out of order, checkpointed, crashed and resumed.

    The cluster's content (``indexed``) survives crashes; everything in memory does not.
    Checked after every step: the stored watermark never exceeds the longest prefix the
    cluster acknowledged (I5), never decreases, has the offset of its record, and is
    ``done`` only once every record was acknowledged.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.store = open_store(self.dir, verify="off")
        self.last_stored = 0
        self.was_done = False

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir)

    @initialize(ends=record_ends(), compressed=st.booleans())
    def start(self, ends: list[int], compressed: bool) -> None:
        self.ends = ends
        self.compressed = compressed
        self.indexed: set[int] = set()
        self.resume()

    def resume(self) -> None:
        stored = self.store.get("b", "k", "v1")
        acked, offset = (stored.acked, stored.offset) if stored else (0, 0)
        self.mark = Watermark(acked, offset)
        self.next = acked + 1  # the reader restarts just past the watermark
        self.in_flight: set[int] = set()
        self.eof = False

    @precondition(lambda self: not self.eof)
    @rule()
    def read(self) -> None:
        if self.next > len(self.ends):
            self.eof = True
        else:
            self.in_flight.add(self.next)
            self.next += 1

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        # Latest first: Hypothesis favours early elements, and in-order acks find nothing.
        position = data.draw(st.sampled_from(sorted(self.in_flight, reverse=True)))
        self.in_flight.discard(position)
        self.indexed.add(position)
        self.mark.ack(position, self.ends[position - 1])

    @rule()
    def commit(self) -> None:
        settled = self.eof and not self.in_flight and self.mark.acked == len(self.ends)
        self.store.commit(
            [
                state(
                    status="done" if settled else "in_progress",
                    acked=self.mark.acked,
                    offset=-1 if self.compressed else self.mark.offset,
                    total=len(self.ends) if self.eof else -1,
                )
            ]
        )

    @rule(data=st.data())
    def stale_commit(self, data: st.DataObject) -> None:
        # A second task on the same object, behind this one.
        acked = data.draw(st.integers(0, self.mark.acked))
        self.store.commit([state(acked=acked, offset=self.ends[acked - 1] if acked else 0)])

    @rule(verify=st.sampled_from(["off", "inline"]))
    def crash(self, verify: str) -> None:
        self.store.close()
        self.store = open_store(self.dir, verify=verify)  # type: ignore[arg-type]
        self.resume()

    @invariant()
    def stored_watermark_is_safe_and_monotonic(self) -> None:
        stored = self.store.get("b", "k", "v1")
        if stored is None:
            assert self.last_stored == 0
            return
        prefix = 0
        while prefix + 1 in self.indexed:
            prefix += 1
        assert stored.acked <= prefix
        assert stored.acked >= self.last_stored
        self.last_stored = stored.acked
        if not self.compressed and stored.offset != -1:
            assert stored.offset == (self.ends[stored.acked - 1] if stored.acked else 0)
        if self.was_done:
            assert stored.status == "done", "a done object was reopened"
        if stored.status == "done":
            assert stored.acked == len(self.ends) == stored.total
            assert self.indexed == set(range(1, len(self.ends) + 1))
            self.was_done = True


TestCheckpointModel = CheckpointModel.TestCase


def test_a_commit_growing_the_file_during_the_size_check_is_not_taken_for_a_truncation(
    tmp_path: Path,
) -> None:
    """The truncation check reads the pages in use, then the file size: a commit by
    another thread in between (the file grows, then the last page is published) must
    not stop the store (seen as a failed import rerun after kill -9)."""
    from s3lb.checkpoint._space import FileGuard

    store = tmp_path / "checkpoint"
    store.mkdir()
    data = store / "data.mdb"
    data.write_bytes(b"\0" * 4096 * 4)

    class Committing:
        """An environment whose info() lands a commit first, as another thread would."""

        def stat(self) -> dict[str, int]:
            return {"psize": 4096}

        def info(self) -> dict[str, int]:
            with data.open("ab") as f:
                f.write(b"\0" * 4096 * 2)  # the commit wrote two pages, then published
            return {"last_pgno": 5}

    guard = FileGuard(Committing(), store, tmp_path)  # type: ignore[arg-type]
    try:
        guard.check()
    finally:
        guard.close()
