"""The delivery pipeline: object readers between the sources and the sinks, the wiring
that runs them (``run``), and the import engine (``import``)."""

from __future__ import annotations

from s3lb.pipeline.wiring import Clients as Clients
from s3lb.pipeline.wiring import Delivery as Delivery
from s3lb.pipeline.wiring import open_delivery as open_delivery
from s3lb.pipeline.wiring import run_pipeline as run_pipeline

__all__ = ["Clients", "Delivery", "open_delivery", "run_pipeline"]
