"""The unit of work every source hands to the readers: one object of one input."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from s3lb.acks import ObjectTracker
from s3lb.config import Input
from s3lb.model import ObjectRef

__all__ = ["InputRuntime", "ObjectTask"]


@dataclass(frozen=True, slots=True)
class InputRuntime:
    """What a reader needs from an ``inputs:`` entry, compiled once."""

    name: str
    log_format: str
    options: Mapping[str, Any]
    key_regex: re.Pattern[str] | None
    extra_fields: Mapping[str, Any]

    @classmethod
    def from_config(cls, item: Input, index: int) -> InputRuntime:
        """Compile input number ``index`` of the configuration."""
        extra: dict[str, Any] = {}
        if item.fields:
            extra = dict(item.fields) if item.fields_under_root else {"fields": dict(item.fields)}
        return cls(
            name=item.name or f"inputs[{index}]",
            log_format=item.log_format,
            options=dict(item.log_format_options),
            key_regex=re.compile(item.key_regex_fields) if item.key_regex_fields else None,
            extra_fields=extra,
        )


@dataclass(slots=True)
class ObjectTask:
    """One object to read, for one input, tracked until its records are settled."""

    ref: ObjectRef
    input: InputRuntime
    tracker: ObjectTracker
    region: str
