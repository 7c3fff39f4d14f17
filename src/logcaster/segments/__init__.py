"""The on-disk event log (issue 4): block format, segment files and their
names, writer and its open-time recovery, housekeeping, inspection, repair and
the data directory lock."""

from logcaster.segments.blocks import BlockFormatError, decode_payload, encode_block, encode_payload
from logcaster.segments.names import parse_segment_name, segment_name
from logcaster.segments.repair import Recovery
from logcaster.segments.segment import (
    BlockInfo,
    Corruption,
    SegmentScan,
    StoredBatch,
    TornTail,
    read_batches,
    read_blocks,
    scan_segment,
    truncate_torn_tail,
)
from logcaster.segments.writer import SegmentWriter

__all__ = [
    "BlockFormatError",
    "BlockInfo",
    "Corruption",
    "Recovery",
    "SegmentScan",
    "SegmentWriter",
    "StoredBatch",
    "TornTail",
    "decode_payload",
    "encode_block",
    "encode_payload",
    "parse_segment_name",
    "read_batches",
    "read_blocks",
    "scan_segment",
    "segment_name",
    "truncate_torn_tail",
]
