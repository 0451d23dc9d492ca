"""The prepare step: turn a landed S3 object into something Redshift COPY can read, validating it first.

Modules, one concept each: :mod:`.model` (spec, result, ``FileRejected``), :mod:`.sniff` (magic
numbers, decompressors), :mod:`.text` (encodings, BOM, invalid bytes, NUL, newlines),
:mod:`.csv_header` (header and data-row checks), :mod:`.json_records` (JSON array → NDJSON),
:mod:`.zip_archive` (zip → gzip members, manifest), :mod:`.staging` (staged keys, gzip upload,
manifest, cleanup), :mod:`.content` (one pass over a file), :mod:`.pipeline` (``prepare_file``).
"""

from .model import FileRejected, PreparedFile, PrepareSpec
from .pipeline import prepare_file
from .staging import cleanup_staging

__all__ = ["FileRejected", "PrepareSpec", "PreparedFile", "cleanup_staging", "prepare_file"]
