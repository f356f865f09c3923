"""Property tests of the decoder (hypothesis), bounded for CI.

(a) random bytes, (b) mutations of valid encoded messages, (c) messages generated from
typed values. For (a) and (b) ``decode``, ``decode_lazy`` and every ``.value`` /
``.children`` of the lazy result either succeed or raise ``DecodeError`` with a result code
of the requirement (3008 3009 5001 5004 5005 5008 5009 5011 5014 5015), Failed-AVP bytes
where RFC 6733 §7.5 wants them (the offending AVP as received, or for 5005 an example),
``fatal`` only for 5011/5015; anything else fails. A successful decode re-encodes to the
same bytes. The mutation engine and the property are those of ``bench/fuzz_codec.py``
(loaded from there), which runs them for as long as you like.

Budget: the tests below decode at least 159,000 inputs in total, each test asserting its
own share (random bytes 10,000, structured mutations 14,000, sweep 15,000, seeded batches
120,000, plus the typed round trips); ``pytest -s`` prints the counts by result code. The
file runs in about 30 s on the 2-core CI machine. Each test runs under ``signal.alarm``:
a hang fails it instead of blocking CI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import random
import signal
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_codec.avp import Avp, pack_avp
from cx_codec.build import answer_for, avp, new_message, new_request
from cx_codec.errors import DecodeError
from cx_codec.message import decode, decode_lazy


def load_harness():
    path = Path(__file__).resolve().parents[2] / "bench" / "fuzz_codec.py"
    spec = importlib.util.spec_from_file_location("fuzz_codec_harness", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HARNESS = load_harness()
SEEDS = HARNESS.seed_messages()
N_OPS = HARNESS.N_OPS
check = HARNESS.check
mutate = HARNESS.mutate

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


class Hang(BaseException):
    """Not an Exception: hypothesis must not catch it and try to shrink a hang."""


@contextlib.contextmanager
def time_limit(seconds):
    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s: an infinite loop?")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def report(name, counts):
    """Visible with ``pytest -s``: how many inputs, and the outcomes by result code."""
    codes = sorted(code for code in counts if code != "inputs")
    outcomes = " ".join(f"{code}:{counts[code]}" for code in codes)
    print(f"\n{name}: {counts['inputs']} inputs decoded; {outcomes}")


def checked(data, counts):
    """Run the property on one input; any exception but the harness's verdict propagates."""
    counts["inputs"] += 1
    counts[check(data)] += 1


# -- (a) random bytes -------------------------------------------------------------------------------


def test_random_bytes():
    counts = Counter()

    @settings(max_examples=5000, **SETTINGS)
    @given(st.binary(max_size=96), st.integers(0, 255), st.integers(0, 7))
    def run(body, flags, pad):
        checked(body, counts)  # anything at all
        body = body + bytes(pad)
        # a plausible header (version 1, its own length) so the AVP parser sees random bytes
        header = (
            (0x01000000 | (20 + len(body))).to_bytes(4, "big")
            + bytes([flags])
            + b"\x00\x01\x2f"
            + bytes(12)
        )
        checked(header + body, counts)

    with time_limit(120):
        run()
    report("random bytes", counts)
    assert counts["inputs"] >= 10_000
    assert counts[5015] and counts[5014]


# -- (b) mutations of valid messages -------------------------------------------------------------

MUTATION = st.tuples(
    st.integers(0, N_OPS - 1), st.integers(0, 65535), st.integers(0, 65535), st.booleans()
)


def test_structured_mutations():
    """Hypothesis picks the seed and the mutation list; every intermediate state is checked."""
    counts = Counter()

    @settings(max_examples=5000, **SETTINGS)
    @given(st.integers(0, len(SEEDS) - 1), st.lists(MUTATION, min_size=1, max_size=5))
    def run(seed, mutations):
        data = SEEDS[seed]
        for op, a, b, fix_length in mutations:
            data = mutate(data, op, a, b, fix_length, SEEDS)
            checked(data, counts)

    with time_limit(120):
        run()
    report("structured mutations", counts)
    assert counts["inputs"] >= 14_000
    for code in (2001, 3008, 3009, 5001, 5004, 5005, 5008, 5009, 5011, 5014, 5015):
        assert counts[code], f"no mutation produced {code}: the mutations lost their reach"


def test_every_truncation_and_every_byte_of_every_seed():
    """A deterministic sweep: each seed cut at every length (with the message length fixed
    too, at multiples of 4), and each byte set to 0x00, 0xFF, and its low / high bit flipped."""
    counts = Counter()
    with time_limit(120):
        for seed in SEEDS:
            for position in range(len(seed)):
                cut = seed[:position]
                checked(cut, counts)
                if position >= 4 and position % 4 == 0:
                    checked(cut[:1] + position.to_bytes(3, "big") + cut[4:], counts)
                original = seed[position]
                for value in {0x00, 0xFF, original ^ 0x01, original ^ 0x80} - {original}:
                    checked(seed[:position] + bytes([value]) + seed[position + 1 :], counts)
    report("sweep", counts)
    assert counts["inputs"] >= 15_000


def test_seeded_mutation_batches():
    """The bulk of the budget: hypothesis draws a seed, 50 inputs are derived from it in
    plain Python (cheap per input), as bench/fuzz_codec.py does."""
    counts = Counter()
    per_example = 60

    @settings(max_examples=2000, **SETTINGS)
    @given(st.integers(0, 2**64 - 1))
    def run(seed):
        rng = random.Random(seed)
        for _ in range(per_example):
            checked(HARNESS.random_input(rng, SEEDS), counts)

    with time_limit(240):
        run()
    report("seeded batches", counts)
    assert counts["inputs"] >= 120_000


def test_harness_reports_non_decode_errors_as_failures():
    """The property would catch a decoder that raised something else: check it on a stub."""
    assert check(SEEDS[0]) == 2001
    broken = bytes.fromhex("010000188000011800000000000000000000000000000000")
    assert check(broken) == 5014
    assert HARNESS.offending_from(b"abc", b"xxabcxx")
    assert not HARNESS.offending_from(b"\x00" * 8, b"")


# -- (c) messages from typed values round-trip ----------------------------------------------------

IDENTITY = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24
)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=24)
OCTETS = st.binary(max_size=24)
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
TIME = st.datetimes(min_value=datetime(1968, 1, 21), max_value=datetime(2104, 2, 25)).map(
    lambda moment: moment.replace(microsecond=0, tzinfo=UTC)
)
URI = st.builds(
    lambda host, port, transport: f"aaa://{host}{port}{transport}",
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    st.sampled_from(["", ":3868", ":1"]),
    st.sampled_from(["", ";transport=tcp", ";transport=sctp;protocol=diameter"]),
)
UNKNOWN = st.builds(
    lambda code, vendor, data, p_bit: Avp(
        code,
        (0x80 if vendor else 0) | (0x20 if p_bit else 0),
        vendor,
        data,
        raw=pack_avp(code, (0x80 if vendor else 0) | (0x20 if p_bit else 0), vendor, data),
    ),
    st.integers(5000, 6000),
    st.sampled_from([0, 0, 99, 10415]),
    OCTETS,
    st.booleans(),
)
EXTRA = st.one_of(
    st.builds(lambda v: avp("Event-Timestamp", v), TIME),
    st.builds(lambda v: avp("Accounting-Sub-Session-Id", v), U64),
    st.builds(lambda v: avp("Redirect-Host", v), URI),
    st.builds(lambda v: avp("Host-IP-Address", v), st.ip_addresses()),
    st.builds(lambda v: avp("Class", v), OCTETS),
    st.builds(lambda v: avp("Session-Timeout", v), U32),
    st.builds(lambda v: avp("Acct-Multi-Session-Id", v), TEXT),
    UNKNOWN,
)
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "sip_item_number": U32,
        "sip_authentication_scheme": TEXT,
        "sip_authenticate": OCTETS,
        "sip_authorization": OCTETS,
        "confidentiality_key": OCTETS,
        "integrity_key": OCTETS,
        "framed_interface_id": U64,
        "line_identifier": st.lists(OCTETS, max_size=2),
        "extra": st.lists(UNKNOWN, max_size=2),
    },
)
MAR_FIELDS = st.fixed_dictionaries(
    {
        "session_id": TEXT,
        "vendor_specific_application_id": st.just(
            {"vendor_id": 10415, "auth_application_id": 16777216}
        ),
        "auth_session_state": st.sampled_from([0, 1]),
        "origin_host": IDENTITY,
        "origin_realm": IDENTITY,
        "destination_realm": IDENTITY,
        "user_name": TEXT,
        "public_identity": TEXT,
        "sip_auth_data_item": ITEM,
        "sip_number_auth_items": U32,
        "server_name": TEXT,
    },
    optional={
        "destination_host": IDENTITY,
        "proxy_info": st.lists(
            st.fixed_dictionaries({"proxy_host": IDENTITY, "proxy_state": OCTETS}), max_size=3
        ),
        "route_record": st.lists(IDENTITY, max_size=3),
        "extra": st.lists(EXTRA, max_size=4),
    },
)


def typed_leaves(message):
    """(name, value) of every non-Grouped AVP, depth first, read through the public API."""
    leaves = []
    stack = list(reversed(message.avps))
    while stack:
        node = stack.pop()
        if node.is_grouped:
            stack.extend(reversed(node.children))
        else:
            leaves.append((node.name, node.value))
    return leaves


def assert_round_trip(message, counts):
    data = message.encode()
    decoded = decode(data)
    counts["inputs"] += 1
    assert decoded.encode() == data
    assert typed_leaves(decoded) == typed_leaves(message)
    lazy = decode_lazy(data)
    assert typed_leaves(lazy) == typed_leaves(message)
    assert [a.encode() for a in lazy.avps] == [a.encode() for a in message.avps]
    return decoded


def test_typed_messages_round_trip():
    counts = Counter()

    @settings(max_examples=600, **SETTINGS)
    @given(
        MAR_FIELDS,
        st.integers(0, 2**32 - 1),
        st.lists(ITEM, max_size=3),
        st.one_of(st.none(), st.tuples(st.just(10415), U32)),
    )
    def run(fields, hop_by_hop, items, experimental):
        request = new_request(
            "Multimedia-Auth-Request",
            hop_by_hop=hop_by_hop,
            end_to_end=~hop_by_hop & 0xFFFFFFFF,
            **fields,
        )
        decoded = assert_round_trip(request, counts)
        assert (decoded.hop_by_hop, decoded.end_to_end) == (hop_by_hop, ~hop_by_hop & 0xFFFFFFFF)
        answer = answer_for(
            decoded,
            origin_host="hss.net",
            origin_realm="net",
            result_code=None if experimental else 2001,
            experimental_result=experimental,
            sip_auth_data_item=items,
            sip_number_auth_items=len(items),
        )
        assert_round_trip(answer, counts)

    with time_limit(120):
        run()
    assert counts["inputs"] >= 1000


def test_typed_capabilities_exchange_round_trip():
    counts = Counter()

    @settings(max_examples=300, **SETTINGS)
    @given(
        IDENTITY,
        st.lists(st.ip_addresses(), min_size=1, max_size=4),
        U32,
        TEXT,
        st.lists(U32, max_size=3),
        st.one_of(st.none(), U32),
    )
    def run(host, addresses, vendor_id, product, applications, firmware):
        cer = new_message(
            "Capabilities-Exchange-Request",
            origin_host=host,
            origin_realm=host,
            host_ip_address=addresses,
            vendor_id=vendor_id,
            product_name=product,
            auth_application_id=applications,
            firmware_revision=firmware,
        )
        decoded = assert_round_trip(cer, counts)
        assert [a.value for a in decoded.find_all("Host-IP-Address")] == addresses

    with time_limit(60):
        run()
    assert counts["inputs"] >= 300


def test_decode_errors_are_the_only_exceptions_for_garbage_values():
    """Every typed AVP of the dictionary given random data: the value either decodes or
    raises DecodeError (5004/5014) carrying the AVP; never another exception."""
    from cx_codec.dictionary import DEFAULT_DICTIONARY

    definitions = [d for d in DEFAULT_DICTIONARY.avps.values() if d.decode is not None]
    rng = random.Random(6733)
    counts = Counter()
    with time_limit(60):
        for definition in definitions:
            for size in (0, 1, 2, 3, 4, 5, 6, 8, 12, 16, 18, 20, 33):
                data = rng.randbytes(size)
                raw = pack_avp(definition.code, definition.flags, definition.vendor, data)
                candidate = Avp(
                    definition.code, definition.flags, definition.vendor, data, definition, raw
                )
                try:
                    candidate.value  # noqa: B018
                    counts["ok"] += 1
                except DecodeError as error:
                    assert error.result_code in (5004, 5014)
                    assert error.failed_avp == raw
                    counts[error.result_code] += 1
    assert counts["ok"] and counts[5004] and counts[5014]
