"""cx_codec.splice against cx_codec.rewrite: the same bytes for any layout and any choice
of keys replaced, constant, optional, appended or removed, and the same 5005 when a key
can be none of those."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cx_codec.avp import pack_avp
from cx_codec.errors import DecodeError
from cx_codec.rewrite import rewrite
from cx_codec.splice import Splice, _compile, _interpret, walk

KEYS = [(1, 0), (263, 0), (264, 0), (282, 0), (293, 0), (601, 10415), (602, 10415), (1, 10415)]
_avp = st.tuples(st.sampled_from(KEYS), st.sampled_from([0x40, 0x00, 0x60]), st.binary(max_size=13))


def _message(avps: list) -> bytes:
    body = b"".join(pack_avp(code, flags | (0x80 if vendor else 0), vendor, data) for (code, vendor), flags, data in avps)
    return struct.pack(">IIIII", 1 << 24 | (20 + len(body)), 0xC0 << 24 | 303, 16777216, 7, 9) + body


@settings(max_examples=400, deadline=None)
@given(
    avps=st.lists(_avp, max_size=8),
    chosen=st.lists(st.sampled_from(KEYS), unique=True, max_size=5),
    constant=st.sets(st.sampled_from(KEYS)),
    optional=st.sets(st.sampled_from(KEYS)),
    absent=st.sets(st.sampled_from(KEYS)),
    remove=st.sets(st.sampled_from(KEYS)),
    data=st.data(),
)
def test_a_splice_rewrites_as_rewrite_does(avps, chosen, constant, optional, absent, remove, data) -> None:
    message = _message(avps)
    values = {key: data.draw(st.binary(max_size=9), label=f"value {key}") for key in chosen}
    constants = {key: value for key, value in values.items() if key in constant}
    flags = {key: 0x40 | (0x80 if key[1] else 0) for key in absent}
    packed = {key: pack_avp(key[0], flags[key], key[1], values.get(key, b"")) for key in absent}
    try:
        expected = rewrite(message, values, optional=optional, absent=packed, remove=remove)
    except DecodeError as error:
        with pytest.raises(DecodeError) as raised:
            Splice(walk(message), chosen, constants=constants, optional=optional, absent=flags, remove=remove)
        assert raised.value.result_code == error.result_code == 5005
        return
    splice = Splice(walk(message), chosen, constants=constants, optional=optional, absent=flags, remove=remove)
    assert splice.apply(message, [values[key] for key in chosen if key not in constants]) == expected
    compiled = _compile(splice._pieces)  # what a Splice runs once used COMPILE_AFTER times
    assert compiled(message, [values[key] for key in chosen if key not in constants], None, None) == expected
    other = _message(avps[:-1] + [avps[-1][:2] + (b"x" * len(avps[-1][2]),)]) if avps else message  # same layout
    assert splice.apply(other, [values[key] for key in chosen if key not in constants]) == rewrite(
        other, values, optional=optional, absent=packed, remove=remove)


@settings(max_examples=200, deadline=None)
@given(avps=st.lists(_avp, min_size=1, max_size=8), chosen=st.lists(st.sampled_from(KEYS), unique=True, max_size=5),
       data=st.data())
def test_apply_sets_the_ids_given_and_body_is_its_avps(avps, chosen, data) -> None:
    """The header ``apply`` writes (RFC 6733 §3: the length of what it made, the ids
    given, the rest as received); ``body`` is what follows it."""
    message = _message(avps)
    values = {key: data.draw(st.binary(max_size=300), label=f"value {key}") for key in chosen}
    absent = {key: 0x40 | (0x80 if key[1] else 0) for key in chosen}
    splice = Splice(walk(message), chosen, absent=absent)
    expected = rewrite(message, values, absent={key: pack_avp(key[0], absent[key], key[1], values[key]) for key in chosen})
    ordered = [values[key] for key in chosen]
    made = splice.apply(message, ordered, b"\1\2\3\4", b"\5\6\7\x08")
    assert made == expected[:12] + b"\1\2\3\4\5\6\7\x08" + expected[20:]
    assert int.from_bytes(made[1:4], "big") == len(made)
    assert splice.body(message, ordered) == expected[20:]


@settings(max_examples=200, deadline=None)
@given(avps=st.lists(_avp, min_size=1, max_size=8), chosen=st.lists(st.sampled_from(KEYS), unique=True, max_size=5),
       data=st.data())
def test_a_splice_is_compiled_after_some_uses_and_gives_the_same_bytes(avps, chosen, data) -> None:
    """A layout used a few times (a hostile peer's answers may each have their own) is not
    compiled; from COMPILE_AFTER uses on the compiled function gives the interpreted bytes."""
    from cx_codec import splice as module

    message = _message(avps)
    values = [data.draw(st.binary(max_size=300), label=f"value {key}") for key in chosen]
    absent = {key: 0x40 | (0x80 if key[1] else 0) for key in chosen}
    splice = Splice(walk(message), chosen, absent=absent)
    compiled = []
    real = module._compile
    module._compile = lambda pieces: compiled.append(pieces) or real(pieces)
    try:
        made = [splice.apply(message, values, b"\1\2\3\4") for _ in range(module.COMPILE_AFTER - 1)]
        assert compiled == []
        made += [splice.apply(message, values, b"\1\2\3\4") for _ in range(3)]
    finally:
        module._compile = real
    assert len(compiled) == 1 and len(set(made)) == 1
    # compiled, ``apply`` is the generated function itself, with the method's defaults
    assert splice.apply is not splice._interpreted
    assert splice.apply(message, values) == _interpret(splice._pieces, message, values, None, None)
