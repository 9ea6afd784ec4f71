"""A real single-node OpenSearch 2.19 for the test suite.

Built from Maven Central jars by ``tests/opensearch/pom.xml`` (no distribution
tarball, no docker) and started as a plain JVM: see ``tests/opensearch/README.md``.

Use from a pytest fixture::

    reason = opensearch_node.skip_reason()
    if reason:
        (pytest.fail if opensearch_node.in_ci() else pytest.skip)(reason)
    with opensearch_node.running_node(tmp_path_factory.mktemp("opensearch")) as url:
        yield url  # "http://127.0.0.1:PORT"

Only the standard library is used here, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MAIN_CLASS = "s3lb.testnode.TestNode"
JAR_NAME = "s3lb-testnode-1.jar"
STAMP_NAME = ".s3lb-build-ok"
MIN_JAVA = 17  # OpenSearch 2.19 runs on 11+, the launcher is compiled for 17
START_TIMEOUT = 120.0
BUILD_TIMEOUT = 900.0
HEAP = "512m"


class NodeError(RuntimeError):
    """The test node could not be built or started; the message says why, verbatim."""


def in_ci() -> bool:
    """True under CI (``CI=true``), where a node that cannot run is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _node_dir(repo_root: Path | None) -> Path:
    return Path(repo_root or REPO_ROOT) / "tests" / "opensearch"


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        cand = Path(home) / "bin" / "java"
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which("java")


def _mvn() -> str | None:
    return shutil.which("mvn")


@cache
def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0_x" -> 8


def _newest_input_mtime(node_dir: Path) -> float:
    newest = (node_dir / "pom.xml").stat().st_mtime
    for p in (node_dir / "src").rglob("*"):
        if p.is_file():
            newest = max(newest, p.stat().st_mtime)
    return newest


def _is_built(node_dir: Path) -> bool:
    target = node_dir / "target"
    stamp = target / STAMP_NAME
    if not (stamp.is_file() and (target / JAR_NAME).is_file() and (target / "lib").is_dir()):
        return False
    return stamp.stat().st_mtime >= _newest_input_mtime(node_dir)


def skip_reason(repo_root: Path | None = None) -> str | None:
    """Why the node cannot run here (no/old Java, no Maven when a build is needed), or None."""
    java = _java()
    if java is None:
        return (
            "OpenSearch test node: no `java` on PATH (nor $JAVA_HOME); it needs Java "
            f"{MIN_JAVA}+ and Maven, e.g. `apt-get install openjdk-17-jdk-headless maven`"
        )
    major = _java_major(java)
    if major is None:
        return f"OpenSearch test node: cannot tell the version of {java} (`java -version` failed)"
    if major < MIN_JAVA:
        return f"OpenSearch test node: {java} is Java {major}, it needs Java {MIN_JAVA}+"
    node_dir = _node_dir(repo_root)
    if not (node_dir / "pom.xml").is_file():
        return f"OpenSearch test node: {node_dir / 'pom.xml'} is missing"
    if not _is_built(node_dir) and _mvn() is None:
        return (
            "OpenSearch test node: not built yet and no `mvn` on PATH to build it "
            "(e.g. `apt-get install maven`)"
        )
    return None


def _log(msg: str) -> None:
    print(f"[opensearch-node] {msg}", file=sys.stderr, flush=True)


def build_node(repo_root: Path | None = None) -> Path:
    """Build the launcher (``mvn package`` in tests/opensearch) if missing or stale.

    Returns the ``target`` directory holding ``s3lb-testnode-1.jar`` and ``lib/``.
    Tries ``mvn -o`` first (no network when ~/.m2 already has everything), then online.
    Safe to call from concurrent test runs: the build holds a file lock.
    """
    node_dir = _node_dir(repo_root)
    target = node_dir / "target"
    if _is_built(node_dir):
        return target
    mvn = _mvn()
    if mvn is None:
        raise NodeError("cannot build the OpenSearch test node: no `mvn` on PATH")
    target.mkdir(exist_ok=True)
    with open(target / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_built(node_dir):  # another run built it while we waited
            return target
        (target / STAMP_NAME).unlink(missing_ok=True)
        t0 = time.monotonic()
        attempts = []
        if (Path.home() / ".m2" / "repository").is_dir():
            attempts.append(("offline", [mvn, "-B", "-q", "-o", "package"]))
        attempts.append(("online", [mvn, "-B", "-q", "package"]))
        out = ""
        for mode, cmd in attempts:
            _log(f"building {node_dir} ({mode}): {' '.join(cmd)}")
            try:
                res = subprocess.run(
                    cmd,
                    cwd=node_dir,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as e:
                raise NodeError(f"`{' '.join(cmd)}` took over {BUILD_TIMEOUT:.0f}s") from e
            out = (res.stdout or "") + (res.stderr or "")
            if res.returncode == 0 and (target / JAR_NAME).is_file():
                (target / STAMP_NAME).write_text(f"{mode} build in {time.monotonic() - t0:.1f}s\n")
                _log(f"built in {time.monotonic() - t0:.1f}s ({mode})")
                return target
        tail = "\n".join(out.splitlines()[-40:])
        raise NodeError(f"building the OpenSearch test node failed in {node_dir}:\n{tail}")


def _classpath(target: Path) -> str:
    jars = [target / JAR_NAME, *sorted((target / "lib").glob("*.jar"))]
    return os.pathsep.join(str(j) for j in jars)


def _jvm_args(java: str, home: Path, heap: str) -> list[str]:
    args = [
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        f"-XX:ErrorFile={home / 'logs' / 'hs_err_pid%p.log'}",
        "-Dfile.encoding=UTF-8",
        f"-Djava.io.tmpdir={home / 'tmp'}",
        # as in OpenSearch's own config/jvm.options
        "-Dlog4j.shutdownHookEnabled=false",
        "-Dlog4j2.disable.jmx=true",
        "-Dio.netty.noUnsafe=true",
        "-Dio.netty.noKeySetOptimization=true",
        "-Dio.netty.recycler.maxCapacityPerThread=0",
        "-Dopensearch.networkaddress.cache.ttl=60",
        "-Dopensearch.networkaddress.cache.negative.ttl=10",
    ]
    major = _java_major(java) or MIN_JAVA
    if major < 23:  # the COMPAT provider is gone in 23; OpenSearch 2.x uses it before that
        args.append("-Djava.locale.providers=SPI,COMPAT")
    return args


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin:
            proc.stdin.close()  # --watch-stdin: EOF -> clean shutdown
    if proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        proc.terminate()  # SIGTERM -> shutdown hook closes the node
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (Linux), for the curious."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@contextlib.contextmanager
def running_node(
    tmp_dir: Path | str,
    *,
    repo_root: Path | None = None,
    settings: Mapping[str, str] | None = None,
    heap: str = HEAP,
    timeout: float = START_TIMEOUT,
) -> Iterator[str]:
    """Build if needed, start the node with its data under ``tmp_dir``, yield its base URL.

    Waits for ``GET /_cluster/health?wait_for_status=yellow``. The JVM's output goes
    to ``tmp_dir/opensearch.log``; its tail is in the NodeError raised on failure.
    Extra node settings (``-E key=value``) may be given in ``settings``.
    The JVM is stopped (stdin EOF + SIGTERM, then SIGKILL after 30 s) at exit.
    """
    java = _java()
    if java is None:
        raise NodeError("no `java` on PATH (nor $JAVA_HOME)")
    target = build_node(repo_root)
    tmp_dir = Path(tmp_dir)
    home = tmp_dir / "opensearch-home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    port_file = tmp_dir / "opensearch.port"
    port_file.unlink(missing_ok=True)
    log_path = tmp_dir / "opensearch.log"
    cmd = [
        java,
        *_jvm_args(java, home, heap),
        "-cp",
        _classpath(target),
        MAIN_CLASS,
        "--home",
        str(home),
        "--port-file",
        str(port_file),
        "--watch-stdin",
    ]
    for key, value in (settings or {}).items():
        cmd += ["-E", f"{key}={value}"]

    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches pytest, which then stops us cleanly
        )
    try:
        url = _wait_started(proc, port_file, log_path, t0 + timeout)
        _log(
            f"started in {time.monotonic() - t0:.1f}s at {url} "
            f"(pid {proc.pid}, RSS {rss_kib(proc.pid)} KiB, log {log_path})"
        )
        yield url
        _log(f"stopping pid {proc.pid} (RSS {rss_kib(proc.pid)} KiB)")
    finally:
        _stop(proc)


def _wait_started(
    proc: subprocess.Popen[bytes], port_file: Path, log_path: Path, deadline: float
) -> str:
    def fail(why: str) -> NodeError:
        _stop(proc)
        return NodeError(
            f"OpenSearch test node did not start: {why}\n"
            f"--- last lines of {log_path} ---\n{_tail(log_path)}"
        )

    while not port_file.is_file():
        if proc.poll() is not None:
            raise fail(f"JVM exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise fail("no HTTP port written before the timeout")
        time.sleep(0.1)
    port = int(port_file.read_text().strip())
    url = f"http://127.0.0.1:{port}"
    last_err = ""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise fail(f"cluster not yellow before the timeout: {last_err}")
        if proc.poll() is not None:
            raise fail(f"JVM exited with code {proc.returncode}")
        wait_s = max(1, min(30, int(left)))
        health = f"{url}/_cluster/health?wait_for_status=yellow&timeout={wait_s}s"
        try:
            with urllib.request.urlopen(health, timeout=wait_s + 5) as resp:
                body = json.loads(resp.read())
            if body.get("status") in ("yellow", "green") and not body.get("timed_out"):
                return url
            last_err = f"health: {body}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            last_err = repr(e)
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """``python tests/opensearch_node.py build|run|check`` (for .ci/run and by hand)."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(prog="opensearch_node", description=__doc__.split("\n")[0])
    ap.add_argument(
        "cmd",
        choices=["build", "run", "check"],
        help="build: build if stale; run: start a node until Ctrl-C; check: print skip reason",
    )
    args = ap.parse_args(argv)
    reason = skip_reason()
    if args.cmd == "check":
        print(reason or "ok")
        return 1 if reason else 0
    if reason:
        print(reason, file=sys.stderr)
        return 1

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background
        signal.signal(signal.SIGINT, _interrupt)
    try:
        if args.cmd == "build":
            print(build_node())
            return 0
        with (
            tempfile.TemporaryDirectory(prefix="s3lb-opensearch-") as tmp,
            running_node(tmp) as url,
        ):
            print(url, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    except NodeError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
