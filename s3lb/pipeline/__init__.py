"""The delivery pipeline: object readers between the sources and the sinks, the wiring
that runs them (``run``), and the import engine (``import``)."""

from __future__ import annotations

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
