"""Where object tasks come from: SQS notifications (``run``) and listings (``import``)."""

from __future__ import annotations

from s3lb.sources.sqs import QueueInput as QueueInput
from s3lb.sources.sqs import SqsSource as SqsSource
from s3lb.sources.task import InputRuntime as InputRuntime
from s3lb.sources.task import ObjectTask as ObjectTask

__all__ = ["InputRuntime", "ObjectTask", "QueueInput", "SqsSource"]
