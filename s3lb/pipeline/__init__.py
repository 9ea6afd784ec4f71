"""The delivery pipeline: object readers between the sources and the sinks, the wiring
that runs them (``run``), and the import engine (``import``).

The names below are imported on first use: ``s3lb parse`` needs only the pure
``framing`` and ``parsing`` modules, not the event loop and clients the rest brings.
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from s3lb.pipeline.import_jobs import ImportJob as ImportJob
    from s3lb.pipeline.import_jobs import ImportOptions as ImportOptions
    from s3lb.pipeline.import_runs import ImportStatistics as ImportStatistics
    from s3lb.pipeline.importer import Importer as Importer
    from s3lb.pipeline.importer import run_import as run_import
    from s3lb.pipeline.wiring import Clients as Clients
    from s3lb.pipeline.wiring import Delivery as Delivery
    from s3lb.pipeline.wiring import open_delivery as open_delivery
    from s3lb.pipeline.wiring import run_pipeline as run_pipeline

__all__ = [
    "Clients",
    "Delivery",
    "ImportJob",
    "ImportOptions",
    "ImportStatistics",
    "Importer",
    "open_delivery",
    "run_import",
    "run_pipeline",
]

#: Where each exported name lives.
_HOMES = {
    "ImportJob": "import_jobs",
    "ImportOptions": "import_jobs",
    "ImportStatistics": "import_runs",
    "Importer": "importer",
    "run_import": "importer",
    "Clients": "wiring",
    "Delivery": "wiring",
    "open_delivery": "wiring",
    "run_pipeline": "wiring",
}


def __getattr__(name: str) -> typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
