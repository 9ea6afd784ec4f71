"""The configuration: the file's schema and loader (``schema``), and the checks its
types cannot express (``checks``)."""

from __future__ import annotations

from s3lb.config.schema import AwsAuth as AwsAuth
from s3lb.config.schema import Config as Config
from s3lb.config.schema import Duration as Duration
from s3lb.config.schema import ElasticsearchOutput as ElasticsearchOutput
from s3lb.config.schema import FileOutput as FileOutput
from s3lb.config.schema import Input as Input
from s3lb.config.schema import Metrics as Metrics
from s3lb.config.schema import Settings as Settings
from s3lb.config.schema import Ssl as Ssl
from s3lb.config.schema import load as load
from s3lb.config.schema import loads as loads
from s3lb.config.schema import parse_duration as parse_duration

__all__ = [
    "AwsAuth",
    "Config",
    "Duration",
    "ElasticsearchOutput",
    "FileOutput",
    "Input",
    "Metrics",
    "Settings",
    "Ssl",
    "load",
    "loads",
    "parse_duration",
]
