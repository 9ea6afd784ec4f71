"""The Elasticsearch/OpenSearch sink: bulk protocol, client, index names, templates."""

from __future__ import annotations

from s3lb.sinks.elasticsearch.sink import ElasticsearchSink as ElasticsearchSink

__all__ = ["ElasticsearchSink"]
