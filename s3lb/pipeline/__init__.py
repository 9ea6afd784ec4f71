"""The delivery pipeline: wiring, ack tracking, object readers and checkpoints."""

from __future__ import annotations

from s3lb.pipeline._wiring import Delivery as Delivery
from s3lb.pipeline._wiring import open_delivery as open_delivery
from s3lb.pipeline._wiring import run_pipeline as run_pipeline

__all__ = ["Delivery", "open_delivery", "run_pipeline"]
