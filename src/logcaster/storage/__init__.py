"""On-disk persistence (issue 4): the block format and segment files."""

from logcaster.storage.blocks import BlockFormatError, decode_payload, encode_block, encode_payload
from logcaster.storage.repair import Recovery
from logcaster.storage.segment import (
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
from logcaster.storage.writer import (
    SegmentWriter,
    parse_segment_name,
    segment_name,
)

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
