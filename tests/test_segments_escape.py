"""Raw payloads escaped in C (`segments/_escape.c`) are the Python encoder's bytes,
for any texts and at a batch's real size (where the Python encoder counts with
numpy); bytes-like texts other than bytes still encode (in Python)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.segments import blocks
from logcaster.segments.blocks import decode_payload, encode_payload, encode_payload_py
from tests.conftest import need_built

C_ENCODE = blocks.c_encode_payload


def need_escape() -> None:
    need_built(C_ENCODE)


_SPECIAL = st.sampled_from([b"\\", b"\n", b"\r", b"#", b"n", b"r", b"a", b"\xff", b" "])


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=300), st.lists(_SPECIAL, max_size=600).map(b"".join)),
        max_size=12,
    )
)
def test_c_escapes_what_python_escapes(texts: list[bytes]) -> None:
    need_escape()
    assert C_ENCODE is not None
    payload = C_ENCODE(texts)
    assert payload == encode_payload_py(texts)
    assert decode_payload(payload, len(texts)) == texts


def test_a_batch_s_size_and_long_texts_of_escapes() -> None:
    need_escape()
    assert C_ENCODE is not None
    rng = random.Random(3)
    texts = [b"filler line %d" % i for i in range(5000)]
    for at in rng.sample(range(5000), 60):
        texts[at] = bytes(rng.choice(b"\\\n\r#ab") for _ in range(rng.randrange(2000)))
    texts.append(b"\\" * 1000)  # more escapes in one text than a byte counter holds
    assert C_ENCODE(texts) == encode_payload_py(texts)
    assert C_ENCODE([]) == b"" == encode_payload_py([])


def test_bytes_like_texts_take_the_python_encoder() -> None:
    texts: list[bytes] = [bytearray(b"a\\b"), memoryview(b"#c"), b"d"]  # type: ignore[list-item]
    assert encode_payload(texts) == b"a\\\\b\n\\#c\nd\n"
    with pytest.raises(TypeError):
        encode_payload(["text"])  # type: ignore[list-item]
