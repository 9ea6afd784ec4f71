"""What a bench prints: the header (machine, options), tables, the ``RATIO`` line; and
the run's temporary directory."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _base import CORES


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary directory, removed at the end unless ``keep``."""
    if keep:
        path = Path(tempfile.mkdtemp(prefix=f"s3lb-bench-{prefix}-"))
        print(f"(keeping {path})")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"s3lb-bench-{prefix}-") as tmp:
        yield Path(tmp)


def header(title: str, args: Any = None) -> None:
    import platform

    print(f"== {title}")
    print(
        f"machine: {CORES} cores, {_mem_gib():.0f} GiB, python {platform.python_version()}, "
        f"{platform.machine()}" + (f"; options: {vars(args)}" if args is not None else "")
    )


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as a fixed-width table."""
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    )
    for row in cells:
        print(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(name: str, value: float, target: str, met: bool) -> None:
    """The line each script ends with: ``RATIO name: x.xx (target …)``."""
    print(f"RATIO {name}: {value:.2f} (target {target}: {'met' if met else 'NOT met'})")


def process_run(
    processes: int, seconds: float, events: int, cpu: float, sink: dict[str, int]
) -> dict[str, Any]:
    """One run of a processes-N-against-1 bench (``sink``: the null sink's counters)."""
    print(f"  processes {processes}: {seconds:.2f}s", flush=True)
    return {
        "run": f"processes: {processes}",
        "seconds": seconds,
        "events/s": events / seconds,
        "s3lb cpu s": cpu,
        "items acked": sink["items"],
        "bulks": sink["requests"],
    }


def processes_verdict(rows: list[dict[str, Any]], name: str, target: float) -> None:
    """The table of ``rows`` (the first with one process) and the RATIO line of the
    last's events/s over the first's."""
    for row in rows:
        row["x 1 process"] = row["events/s"] / rows[0]["events/s"]
    columns = ["run", "seconds", "events/s", "x 1 process", "s3lb cpu s", "items acked", "bulks"]
    table(rows, columns)
    value = rows[-1]["x 1 process"]
    ratio(name, value, f">= {target}", value >= target)
