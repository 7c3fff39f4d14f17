"""What the block-format and segment-reading tests share: texts and files of known blocks.

`TRICKY` holds texts that stress the payload escaping (`#`, backslashes, inner
newlines, CR, every byte value); `write_blocks` and `three_blocks` write
segment files whose blocks and offsets the tests know.
"""

from __future__ import annotations

from pathlib import Path

from logcaster.segments.blocks import encode_block

TRICKY: list[bytes] = [
    b"",
    b"#",
    b"#LC2 1 1 2 0 r - 00000000",
    b"\\",
    b"\\#",
    b"\\\\n",
    b"a\nb",
    b"a\r\nb",
    b"\n#LC2 5 1 2 0 r - 00000000\n",
    b"trailing backslash \\",
    b"\r",
    b"\n",
    b"\\n\\r\\#",
    b"plain line",
    bytes(range(256)),
]


def texts_for(first_id: int, n: int) -> list[bytes]:
    return [b"event %d level=INFO msg=hello world" % (first_id + i) for i in range(n)]


def write_blocks(path: Path, batches: list[tuple[int, list[bytes]]]) -> list[int]:
    """Write the batches as blocks; returns each block's offset."""
    offsets = []
    with open(path, "wb") as f:
        for first_id, texts in batches:
            offsets.append(f.tell())
            f.write(encode_block(first_id, texts))
    return offsets


def three_blocks() -> list[tuple[int, list[bytes]]]:
    return [(1, texts_for(1, 5)), (6, [*TRICKY, b"x"]), (100, texts_for(100, 7))]
