"""The mappings of each log format's fields, by canonical format name.

Each format module declares its own (``LogFormat.fields``, with the types of
:mod:`s3lb.formats.mappings`); this gathers them for the templates. Aliases are left
out. A field has the same type in every format that has it, so formats compose.
"""

from __future__ import annotations

from typing import Any

from s3lb.formats import FORMATS

__all__ = ["FORMAT_FIELDS"]

#: Leaf fields per format (dotted paths for nested objects), by canonical name.
FORMAT_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    name: {path: dict(mapping) for path, mapping in fmt.fields.items()}
    for name, fmt in FORMATS.items()
    if fmt.alias_of is None
}
