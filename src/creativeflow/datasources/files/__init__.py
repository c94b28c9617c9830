"""Files: a local file or directory under DATASOURCE_FILE_ROOT, and S3-compatible buckets; both
read csv, json, jsonl, parquet and xlsx through `tabular.read_table`."""

from __future__ import annotations

from creativeflow.datasources.base import SourceType
from creativeflow.datasources.files import local_file, s3

SOURCE_TYPES: tuple[SourceType, ...] = (local_file.SOURCE_TYPE, s3.SOURCE_TYPE)
