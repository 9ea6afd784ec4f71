"""s3lb: ship AWS logs from S3 to Elasticsearch/OpenSearch."""

__version__ = "0.1.0"
