"""Where object tasks come from: SQS notifications (``run``) and listings (``import``)."""

from __future__ import annotations

from s3lb.sources.cursor import CursorEntry as CursorEntry
from s3lb.sources.cursor import ListingCursor as ListingCursor
from s3lb.sources.listing import Lister as Lister
from s3lb.sources.listing import bucket_pages as bucket_pages
from s3lb.sources.listing import retrying as retrying
from s3lb.sources.shares import Share as Share
from s3lb.sources.shares import split_job_id as split_job_id
from s3lb.sources.sqs import QueueInput as QueueInput
from s3lb.sources.sqs import SqsSource as SqsSource
from s3lb.sources.task import InputRuntime as InputRuntime
from s3lb.sources.task import ObjectTask as ObjectTask
from s3lb.sources.window import Window as Window
from s3lb.sources.window import format_time as format_time
from s3lb.sources.window import parse_bucket_url as parse_bucket_url
from s3lb.sources.window import parse_time as parse_time

__all__ = [
    "CursorEntry",
    "InputRuntime",
    "Lister",
    "ListingCursor",
    "ObjectTask",
    "QueueInput",
    "Share",
    "SqsSource",
    "Window",
    "bucket_pages",
    "format_time",
    "parse_bucket_url",
    "parse_time",
    "retrying",
    "split_job_id",
]
