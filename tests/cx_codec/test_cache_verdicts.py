"""Caches shortcut work, never a verdict: the same bytes get the same verdict whatever was
decoded before.

The decoder remembers validated AVPs by their bytes (interned), Grouped member layouts
by (AVP, length), message templates by (command, flags, application, length) and grammar
verdicts by AVP key sequence. A cache whose key misses something the verdict depends on
(the nesting depth, for one: RFC 6733 §4.4 Grouped AVPs, our limit ``MAX_DEPTH``) makes
a verdict depend on history. Each input here is judged by a dictionary with empty caches
and by one warmed with related inputs (the same chain at other depths, its sub-chains,
mutations), and both must agree on the result code, the Failed-AVP bytes, and the
decoded tree and its re-encoding; and the same for a lazy decode walked to the leaves.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_codec import samples
from cx_codec.avp import MAX_DEPTH, pack_avp
from cx_codec.dictionary import Dictionary, base, cx, digest, doic
from cx_codec.errors import DecodeError
from cx_codec.message import decode, decode_lazy


def _load_harness():
    path = Path(__file__).resolve().parents[2] / "bench" / "fuzz_codec.py"
    spec = importlib.util.spec_from_file_location("fuzz_codec_harness_cache", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HARNESS = _load_harness()
SEEDS = HARNESS.seed_messages()
SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}

MAR = samples.SAMPLE_MAR if isinstance(samples.SAMPLE_MAR, bytes) else samples.SAMPLE_MAR.encode()
SIP_AUTH_DATA_ITEM = 612
PROXY_INFO = 284
SCHEME = pack_avp(608, 0xC0, 10415, b"Digest-AKAv1-MD5")  # SIP-Authentication-Scheme
PROXY_HOST = pack_avp(280, 0x40, 0, b"dra.partner.example")
PROXY_STATE = pack_avp(33, 0x40, 0, b"\x01state")


def new_dictionary() -> Dictionary:
    return Dictionary().load(base, digest, doic, cx)


# -- inputs ------------------------------------------------------------------------------


def top_level_avps(data: bytes) -> list[bytes]:
    return [avp.encode() for avp in decode_lazy(data).avps]


MAR_AVPS = top_level_avps(MAR)


def message(avps: list[bytes], header: bytes = MAR[:20]) -> bytes:
    body = b"".join(avps)
    return header[:1] + (20 + len(body)).to_bytes(3, "big") + header[4:20] + body


def chain(kinds: list[int], leaf: bytes = SCHEME) -> bytes:
    """Grouped AVPs nested in one another, outermost first: 612 SIP-Auth-Data-Item
    (vendor 10415) or 284 Proxy-Info (base); both grammars end in ``*[ AVP ]``."""
    inner = leaf
    for kind in reversed(kinds):
        if kind == SIP_AUTH_DATA_ITEM:
            inner = pack_avp(SIP_AUTH_DATA_ITEM, 0xC0, 10415, inner)
        else:
            inner = pack_avp(PROXY_INFO, 0x40, 0, PROXY_HOST + PROXY_STATE + inner)
    return inner


def mar_with_item(item: bytes, extra: tuple[bytes, ...] = ()) -> bytes:
    """The sample MAR with its SIP-Auth-Data-Item replaced (and AVPs appended)."""
    avps = [item if avp[:4] == SIP_AUTH_DATA_ITEM.to_bytes(4, "big") else avp for avp in MAR_AVPS]
    return message(avps + list(extra))


def nested_mar(levels: int, kind: int = SIP_AUTH_DATA_ITEM) -> bytes:
    if kind == SIP_AUTH_DATA_ITEM:
        return mar_with_item(chain([SIP_AUTH_DATA_ITEM] * levels))
    return mar_with_item(chain([SIP_AUTH_DATA_ITEM]), (chain([PROXY_INFO] * levels),))


# -- the verdicts ----------------------------------------------------------------------------


def tree(avps) -> list:
    """Everything a caller can read: key, flags, bytes, typed value or members, depth first.
    Failed-AVP members are reported as received and never judged: their bytes only."""
    out = []
    for avp in avps:
        if avp.is_grouped and avp.definition.opaque:
            out.append((avp.key, avp.flags, avp.encode(), [child.encode() for child in avp.children]))
        elif avp.is_grouped:
            out.append((avp.key, avp.flags, avp.encode(), tree(avp.children)))
        else:
            out.append((avp.key, avp.flags, avp.encode(), repr(avp.value)))
    return out


def strict_verdict(data: bytes, dictionary: Dictionary) -> tuple:
    try:
        decoded = decode(data, dictionary)
    except DecodeError as error:
        return ("error", error.result_code, error.failed_avp)
    try:
        return ("ok", decoded.encode(), tree(decoded.avps))
    except DecodeError as error:  # a strict decode that accepted what its members refuse
        return ("accepted, but its members fail", error.result_code, error.failed_avp)


def lazy_verdict(data: bytes, dictionary: Dictionary) -> tuple:
    try:
        decoded = decode_lazy(data, dictionary)
        return ("ok", decoded.encode(), tree(decoded.avps))
    except DecodeError as error:
        return ("error", error.result_code, error.failed_avp)


def warm(dictionary: Dictionary, inputs: list[bytes]) -> None:
    """Decode each input strictly three times (AVPs are interned on their second sighting,
    templates and layouts on the first) and lazily once, ignoring the outcome."""
    for data in inputs:
        for _ in range(3):
            with contextlib.suppress(DecodeError):
                decode(data, dictionary)
        with contextlib.suppress(DecodeError):
            tree(decode_lazy(data, dictionary).avps)


def assert_same_verdicts(target: bytes, warmups: list[bytes]) -> None:
    cold = new_dictionary()
    expected = (strict_verdict(target, cold), lazy_verdict(target, new_dictionary()))
    warmed = new_dictionary()
    warm(warmed, warmups)
    assert (strict_verdict(target, warmed), lazy_verdict(target, warmed)) == expected
    # and again, now that the target itself has been seen (twice: interned)
    assert (strict_verdict(target, warmed), lazy_verdict(target, warmed)) == expected


# -- the findings, by hand ---------------------------------------------------------------------


def test_nesting_too_deep_is_rejected_even_after_a_shallower_chain_of_that_layout():
    deep = nested_mar(30)
    fresh = strict_verdict(deep, new_dictionary())
    assert fresh[:2] == ("error", 5004)
    dictionary = new_dictionary()
    warm(dictionary, [nested_mar(15)])
    assert strict_verdict(deep, dictionary) == fresh


def test_chains_cannot_grow_past_the_limit_one_remembered_layout_at_a_time():
    dictionary = new_dictionary()
    for levels in range(1, 200, 3):
        verdict = strict_verdict(nested_mar(levels), dictionary)
        # the item at depth 0 holds levels - 1 items: the innermost at depth levels - 1,
        # its members at depth levels
        assert verdict[0] == ("ok" if levels <= MAX_DEPTH else "error"), levels


def test_lazy_walk_depth_limit_holds_after_the_inner_chain_was_interned():
    deep = nested_mar(30)
    fresh = lazy_verdict(deep, new_dictionary())
    assert fresh[:2] == ("error", 5004)
    dictionary = new_dictionary()
    inner = nested_mar(14)
    decode(inner, dictionary)
    dictionary.templates.clear()  # so that the second decode parses (and interns) the AVPs
    decode(inner, dictionary)
    assert lazy_verdict(deep, dictionary) == fresh


def test_proxy_info_chains_too():
    assert_same_verdicts(nested_mar(20, PROXY_INFO), [nested_mar(levels, PROXY_INFO) for levels in range(1, 16)])


def test_clear_caches_forgets_everything_learnt():
    dictionary = new_dictionary()
    warm(dictionary, SEEDS)
    dictionary.clear_caches()
    fresh = new_dictionary()
    for name in ("interned", "interned_old", "seen_once", "templates", "layouts", "signatures"):
        assert getattr(dictionary, name) == getattr(fresh, name) == {}, name


# -- the property --------------------------------------------------------------------------------

KINDS = st.lists(st.sampled_from([SIP_AUTH_DATA_ITEM, PROXY_INFO]), min_size=1, max_size=40)
MUTATION = st.tuples(
    st.integers(0, HARNESS.N_OPS - 1), st.integers(0, 65535), st.integers(0, 65535), st.booleans()
)


def _as_mar(kinds: list[int]) -> bytes:
    if kinds[0] == SIP_AUTH_DATA_ITEM:
        return mar_with_item(chain(kinds))
    return mar_with_item(chain([SIP_AUTH_DATA_ITEM]), (chain(kinds),))


@settings(max_examples=150, **SETTINGS)
@given(KINDS, st.lists(st.integers(1, 40), max_size=6), st.lists(MUTATION, max_size=3))
def test_nested_chains_same_verdict_cold_or_warm(kinds, cuts, mutations):
    """A chain of nested Grouped AVPs, judged cold and after its sub-chains (the inner
    parts of the same chain, which recur at other depths) and their mutations were seen."""
    target = _as_mar(kinds)
    for op, a, b, fix_length in mutations:
        target = HARNESS.mutate(target, op, a, b, fix_length, SEEDS)
    warmups = [_as_mar(kinds[-cut:]) for cut in cuts] + [_as_mar(kinds[cut:]) for cut in cuts if cut < len(kinds)]
    assert_same_verdicts(target, warmups)


@settings(max_examples=150, **SETTINGS)
@given(
    st.integers(0, len(SEEDS) - 1),
    st.lists(MUTATION, max_size=4),
    st.lists(st.tuples(st.integers(0, len(SEEDS) - 1), st.lists(MUTATION, max_size=3)), max_size=6),
)
def test_mutated_messages_same_verdict_cold_or_warm(seed, mutations, others):
    """Mutations of the valid seeds, judged cold and after other mutations of the seeds
    (same layouts, same lengths, neighbouring values) were seen."""
    target = SEEDS[seed]
    for op, a, b, fix_length in mutations:
        target = HARNESS.mutate(target, op, a, b, fix_length, SEEDS)
    warmups = list(SEEDS)
    for other, changes in others:
        data = SEEDS[other]
        for op, a, b, fix_length in changes:
            data = HARNESS.mutate(data, op, a, b, fix_length, SEEDS)
        warmups.append(data)
    assert_same_verdicts(target, warmups)
