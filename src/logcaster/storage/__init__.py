"""On-disk persistence (issue 4): the block format and segment files."""

from logcaster.storage.blocks import BlockFormatError, decode_payload, encode_block, encode_payload
from logcaster.storage.segment import (
    BlockInfo,
    Corruption,
    SegmentScan,
    TornTail,
    read_blocks,
    scan_segment,
    truncate_torn_tail,
)

__all__ = [
    "BlockFormatError",
    "BlockInfo",
    "Corruption",
    "SegmentScan",
    "TornTail",
    "decode_payload",
    "encode_block",
    "encode_payload",
    "read_blocks",
    "scan_segment",
    "truncate_torn_tail",
]
