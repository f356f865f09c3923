"""PackedBindings (gateway/applications/packed.py) against a dict: the same answers after any
sequence of puts and removals, through growth, repacking and hash collisions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.applications import packed
from gateway.applications.packed import PackedBindings
from hss_store.records import InboundBinding, PrimaryDatabase

PRIMARIES = [PrimaryDatabase("primary.example"), PrimaryDatabase("primary.example", "hss1.primary.example"),
             PrimaryDatabase("other.example")]


def binding(n: int, version: int = 0, expires: int | None = None) -> InboundBinding:
    return InboundBinding(f"mig-{n}@partner.example", f"sip:mig-{n}.{version}@partner.example",
                          PRIMARIES[(n + version) % 3], f"out-{n}.{version}@primary.example",
                          f"sip:out-{n}.{version}@primary.example", 1_800_000_000 + n, expires)


def put(bindings: PackedBindings, kept: InboundBinding) -> None:
    bindings.put(kept.inbound_impi.encode(), kept.inbound_impu.encode(), kept.primary_impi.encode(),
                 kept.primary_impu.encode(), kept.primary, kept.created_at, kept.expires_at)


def get(bindings: PackedBindings, impi: str) -> InboundBinding | None:
    found = bindings.find(impi.encode())
    if found is None:
        return None
    owner, created, expires, found_impi, impu, primary_impi, primary_impu = found
    assert found_impi == impi.encode()
    return InboundBinding(impi, impu.decode(), bindings.owners[owner], primary_impi.decode(), primary_impu.decode(),
                          created, None if expires == packed.NEVER else expires)


def test_get_gives_the_binding_back_and_find_its_bytes():
    bindings = PackedBindings()
    kept = binding(7, expires=1_900_000_000)
    put(bindings, kept)
    assert get(bindings, "mig-7@partner.example") == kept and len(bindings) == 1
    assert bindings.find(b"mig-7@partner.example") == (
        0, 1_800_000_007, 1_900_000_000, b"mig-7@partner.example", b"sip:mig-7.0@partner.example",
        b"out-7.0@primary.example", b"sip:out-7.0@primary.example")
    assert bindings.owners == [PRIMARIES[1]]
    assert b"mig-7@partner.example" in bindings and b"mig-8@partner.example" not in bindings
    assert get(bindings, "mig-8@partner.example") is None and bindings.find(b"mig-7@partner.exampl") is None


def test_non_ascii_identities_and_the_length_limit():
    bindings = PackedBindings()
    kept = InboundBinding("mïg-ü@partner.example", "sip:mïg@partner.example", PRIMARIES[0], "ö@primary.example",
                          "sip:ö@primary.example", 0)
    put(bindings, kept)
    assert get(bindings, "mïg-ü@partner.example") == kept
    with pytest.raises(ValueError, match="65,535"):
        bindings.put(b"x@partner.example", b"sip:" + b"x" * 70_000, b"a@b", b"sip:a@b", PRIMARIES[0], 0, None)
    assert len(bindings) == 1


def test_replacing_every_binding_keeps_memory_bounded():
    bindings = PackedBindings()
    for n in range(20_000):
        put(bindings, binding(n))
    full = bindings.nbytes
    for round_ in range(1, 4):  # every binding replaced three times: removed bytes are packed away
        for n in range(20_000):
            put(bindings, binding(n, round_))
    assert len(bindings) == 20_000 and bindings.nbytes <= 2 * full
    assert get(bindings, "mig-123@partner.example") == binding(123, 3)


def test_colliding_hashes(monkeypatch):
    """Every IMPI with one hash: probing and removal marks still find the right record."""
    monkeypatch.setattr(packed, "hash", lambda _: 42, raising=False)
    bindings = PackedBindings()
    for n in range(50):
        put(bindings, binding(n))
    for n in range(0, 50, 2):
        assert bindings.remove(f"mig-{n}@partner.example".encode())
    for n in range(50):
        assert get(bindings, f"mig-{n}@partner.example") == (None if n % 2 == 0 else binding(n))
    put(bindings, binding(4, 1))
    assert get(bindings, "mig-4@partner.example") == binding(4, 1) and len(bindings) == 26


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "remove", "clear"]), st.integers(0, 300), st.integers(0, 3)),
                max_size=2_000))
def test_the_same_as_a_dict(operations):
    bindings, model = PackedBindings(), {}
    for operation, n, version in operations:
        impi = f"mig-{n}@partner.example"
        if operation == "put":
            put(bindings, binding(n, version))
            model[impi] = binding(n, version)
        elif operation == "remove":
            assert bindings.remove(impi.encode()) == (model.pop(impi, None) is not None)
        elif n == 0:  # (rarely)
            bindings.clear()
            model.clear()
    assert len(bindings) == len(model)
    assert sorted(bindings) == sorted(impi.encode() for impi in model)
    for n in range(301):
        impi = f"mig-{n}@partner.example"
        assert get(bindings, impi) == model.get(impi)


def test_layouts_past_the_last_number_are_read_by_slicing(monkeypatch):
    """Each layout (the four identities' lengths) gets a compiled reader, up to 65,535 of
    them; the records of further layouts share one that slices (here after two)."""
    monkeypatch.setattr(packed, "_GENERIC", 2)
    bindings, model = PackedBindings(), {}
    for n in range(0, 3000, 7):  # 1 to 4 digits: several layouts
        for version in range(3):
            put(bindings, binding(n, version))
            model[f"mig-{n}@partner.example"] = binding(n, version)
    for n in range(0, 3000, 14):
        assert bindings.remove(f"mig-{n}@partner.example".encode())
        del model[f"mig-{n}@partner.example"]
    assert len(bindings._layouts) == 2 and bindings._readers[2] is packed._sliced
    assert len(bindings) == len(model) and sorted(bindings) == sorted(impi.encode() for impi in model)
    for n in range(3000):
        impi = f"mig-{n}@partner.example"
        assert get(bindings, impi) == model.get(impi)
