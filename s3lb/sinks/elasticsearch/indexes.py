"""Index names from the event's own time: beats' ``%{+yyyy.MM.dd}`` syntax.

``alb-%{+yyyy.MM.dd}`` → ``alb-2016.08.10`` for an event at 2016-08-10, never the
clock, so a replay after midnight lands in the same index. ``%{[field]}`` and
``%{[a.b]}`` insert a field of the event. Date tokens: ``yyyy``, ``yy``, ``MM``,
``dd``, ``HH``, ``xxxx`` (ISO week year) and ``ww`` (ISO week).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from s3lb.errors import ConfigError

__all__ = ["IndexNamer"]

_PART = re.compile(r"%\{(\+[^}]*|\[[^\]]+\])\}")
_TOKEN = re.compile(r"yyyy|yy|MM|dd|HH|xxxx|ww")


def _date_part(pattern: str) -> Callable[[str], str]:
    pieces = [p for p in re.split(r"(yyyy|yy|MM|dd|HH|xxxx|ww)", pattern) if p]
    needs_week = any(p in ("xxxx", "ww") for p in pieces)

    def render(ts: str) -> str:
        week = (
            dt.date(int(ts[0:4]), int(ts[5:7]), int(ts[8:10])).isocalendar() if needs_week else None
        )
        out = []
        for piece in pieces:
            if piece == "yyyy":
                out.append(ts[0:4])
            elif piece == "yy":
                out.append(ts[2:4])
            elif piece == "MM":
                out.append(ts[5:7])
            elif piece == "dd":
                out.append(ts[8:10])
            elif piece == "HH":
                out.append(ts[11:13])
            elif piece == "xxxx" and week:
                out.append(f"{week[0]:04d}")
            elif piece == "ww" and week:
                out.append(f"{week[1]:02d}")
            else:
                out.append(piece)
        return "".join(out)

    return render


class IndexNamer:
    """Renders an index pattern for each document."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._parts: list[str | tuple[str, Any]] = []
        position = 0
        for match in _PART.finditer(pattern):
            self._parts.append(pattern[position : match.start()])
            inner = match.group(1)
            if inner.startswith("+"):
                if not _TOKEN.search(inner[1:]):
                    raise ConfigError(
                        f"no date token in {match.group(0)!r}", "output.elasticsearch.index"
                    )
                self._parts.append(("date", _date_part(inner[1:])))
            else:
                self._parts.append(("field", inner[1:-1].split(".")))
            position = match.end()
        self._parts.append(pattern[position:])
        self._static = all(isinstance(p, str) for p in self._parts)
        self._has_fields = any(isinstance(p, tuple) and p[0] == "field" for p in self._parts)
        self._cache: dict[str, str] = {}

    def __call__(self, document: dict[str, Any]) -> str:
        """The index for ``document`` (its ``@timestamp`` is ``YYYY-MM-DDTHH:…``)."""
        if self._static:
            return self.pattern
        ts = str(document.get("@timestamp", ""))
        key = ts[:13]
        has_fields = self._has_fields
        if not has_fields and key in self._cache:
            return self._cache[key]
        out = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            elif part[0] == "date":
                out.append(part[1](ts) if len(ts) >= 13 else "unknown-date")
            else:
                value: Any = document
                for name in part[1]:
                    value = value.get(name) if isinstance(value, dict) else None
                out.append("" if value is None else str(value))
        name = "".join(out).lower()
        if not has_fields:
            self._cache[key] = name
        return name
