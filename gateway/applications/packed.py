"""Migration bindings packed in memory: every active binding of a SIP database, at about
160 bytes each (1,000,000 bindings in some 160 MB), looked up in 1.3-1.8 microseconds.

The partner role reads an inbound binding for every MAR (TR 23.781 solution 2, step 17),
the primary role an outbound one (step 19). Read from SQLite among a million a binding
costs about 12 us (bench/RESULTS.md, session 6), more than the rest of the translation;
held as Python objects it costs half a kilobyte, in a dict of packed bytes some 280 bytes.
Here, hand-written because no library packs string records this way: one open-addressing
table (linear probing, at most half full) in one ``array`` column, and the records appended
to one ``bytearray``:

    slot   = the record's offset (31 bits) || its layout's number (16) || 16 bits of the
             IMPI's hash (most probes of another IMPI end here, without touching its record)
    record = header (the four identities' lengths; the owner's number: the primary SIP
             database of an inbound binding, the partner of an outbound one; creation
             time; expiry or -1) || IMPI, IMPU, and the identities they stand for
             (primary or real), in UTF-8

A layout is the four lengths; the records of one layout are read by one compiled
``struct.Struct`` (one C call gives every field, the identities as ``bytes``). Bindings
of one deployment have few layouts (its identities follow a pattern); past 65,535 of them
the rest share a reader that slices. A lookup reads the table once and its record once:
1.3-1.8 us for a random IMPI among 1,000,000, where separate hash and offset columns and
slices took 3.0-3.9 (bench/RESULTS.md, session 11).

A removed record leaves its bytes behind until they are more than the live ones, then the
whole is packed again. The hash is Python's own (SipHash, seeded per process): a peer
cannot choose IMPIs that collide, and a lookup always compares the IMPI itself.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Hashable, Iterator

_HEAD = struct.Struct(">HHHHHqq")  # 4 lengths, the owner's number, created_at, expires_at (-1: never)
_EMPTY, _REMOVED = -1, -2  # a slot that holds no record
NEVER = -1  # expires_at of a binding that does not expire
_FIRST_SLOTS = 1024
_MAX_OFFSET = (1 << 31) - 1  # records beyond 2 GiB are not held (the store answers for them)
_TAG = 0xFFFF
_GENERIC = 0xFFFF  # the layout number of records read by slicing (more layouts than numbers)

# (owner's number, created_at, expires_at or NEVER, IMPI, IMPU, the IMPI and IMPU it stands for)
Record = tuple[int, int, int, bytes, bytes, bytes, bytes]


class PackedBindings:
    """Bindings by IMPI (UTF-8 bytes), packed: ``find`` gives a ``Record``, the identities
    as UTF-8 bytes as a message carries them; ``owners[number]`` is the owner."""

    def __init__(self) -> None:
        self.owners: list[Hashable] = []
        self._owner_numbers: dict[Hashable, int] = {}
        self._layouts: dict[tuple[int, ...], int] = {}  # four lengths -> the layout's number
        self._readers: list[Callable[[bytearray, int], Record]] = []  # by layout number
        self._records = bytearray()
        self._live = 0
        self._dead_bytes = 0
        self._new_table(_FIRST_SLOTS)

    def _new_table(self, slots: int) -> None:
        self._mask = slots - 1
        self._slots = array("q", [_EMPTY]) * slots
        self._used = 0  # slots holding a record or a removal mark

    def __len__(self) -> int:
        return self._live

    @property
    def nbytes(self) -> int:
        """Memory held: records, removed ones not yet packed away, and the table."""
        return len(self._records) + 8 * (self._mask + 1)

    # -- reads ------------------------------------------------------------------------------
    def _slot(self, impi: bytes) -> int:
        """The slot of ``impi``'s record, or -1."""
        digest = hash(impi)
        mask, slots, readers, records = self._mask, self._slots, self._readers, self._records
        slot, tag = digest & mask, digest & _TAG
        while True:
            entry = slots[slot]
            if entry == _EMPTY:
                return -1
            if entry >= 0 and entry & _TAG == tag and readers[entry >> 16 & 0xFFFF](records, entry >> 32)[3] == impi:
                return slot
            slot = (slot + 1) & mask

    def find(self, impi: bytes) -> Record | None:
        """The record of ``impi``'s binding; None when there is none. (``_slot``, inline:
        the partner and the primary role call this for every MAR.)"""
        digest = hash(impi)
        mask, slots, readers, records = self._mask, self._slots, self._readers, self._records
        slot, tag = digest & mask, digest & _TAG
        while True:
            entry = slots[slot]
            if entry == _EMPTY:
                return None
            if entry >= 0 and entry & 0xFFFF == tag:  # (_TAG, a literal: no global looked up)
                found = readers[entry >> 16 & 0xFFFF](records, entry >> 32)
                if found[3] == impi:
                    return found
            slot = (slot + 1) & mask

    def __contains__(self, impi: bytes) -> bool:
        return self._slot(impi) >= 0

    def __iter__(self) -> Iterator[bytes]:
        """The IMPIs held (UTF-8)."""
        records = self._records
        for entry in self._slots:
            if entry >= 0:
                offset = entry >> 32
                length = records[offset] << 8 | records[offset + 1]
                yield bytes(records[offset + _HEAD.size : offset + _HEAD.size + length])

    # -- writes -----------------------------------------------------------------------------
    def put(self, impi: bytes, impu: bytes, to_impi: bytes, to_impu: bytes, owner: Hashable, created_at: int,
            expires_at: int | None) -> None:
        """Keep a binding (replacing the one of its IMPI); the identities in UTF-8."""
        parts = (impi, impu, to_impi, to_impu)
        lengths = tuple(map(len, parts))
        if max(lengths) > 0xFFFF:
            raise ValueError(f"an identity of the binding of {impi!r} is longer than 65,535 octets")
        self.remove(impi)
        if len(self._records) > _MAX_OFFSET:
            raise ValueError(f"the packed bindings hold 2 GiB of records; the binding of {impi!r} is left to the store")
        number = self._owner_numbers.get(owner)
        if number is None:
            if len(self.owners) > 0xFFFF:
                raise ValueError(f"more than 65,536 owners of bindings (the last: {owner!r})")
            number = self._owner_numbers[owner] = len(self.owners)
            self.owners.append(owner)
        if (self._used + 1) * 2 > self._mask + 1:
            self._repack(2 * (self._mask + 1) if (self._live + 1) * 4 > self._mask + 1 else self._mask + 1)
        offset = len(self._records)
        self._records += _HEAD.pack(*lengths, number, created_at, NEVER if expires_at is None else expires_at)
        self._records += b"".join(parts)
        self._place(hash(impi), offset, self._layout(lengths))
        self._live += 1

    def _layout(self, lengths: tuple[int, ...]) -> int:
        """The number of the layout of these four lengths (made on first use)."""
        number = self._layouts.get(lengths)
        if number is None:
            readers = self._readers
            if len(readers) >= _GENERIC:
                if len(readers) == _GENERIC:
                    readers.append(_sliced)
                return _GENERIC
            number = self._layouts[lengths] = len(readers)
            readers.append(struct.Struct(">8xHqq{}s{}s{}s{}s".format(*lengths)).unpack_from)  # type: ignore[arg-type]
        return number

    def _place(self, digest: int, offset: int, layout: int) -> None:
        mask, slots = self._mask, self._slots
        slot = digest & mask
        while slots[slot] >= 0:  # (a removal mark is reused)
            slot = (slot + 1) & mask
        if slots[slot] == _EMPTY:
            self._used += 1
        slots[slot] = offset << 32 | layout << 16 | digest & _TAG

    def remove(self, impi: bytes) -> bool:
        """Drop the binding of ``impi``; whether there was one."""
        slot = self._slot(impi)
        if slot < 0:
            return False
        offset = self._slots[slot] >> 32
        self._slots[slot] = _REMOVED
        self._live -= 1
        self._dead_bytes += _HEAD.size + sum(_HEAD.unpack_from(self._records, offset)[:4])
        if self._dead_bytes > len(self._records) // 2:
            self._repack(self._mask + 1)
        return True

    def _repack(self, slots: int) -> None:
        """Copy the live records into a new table of ``slots`` slots and a new bytearray."""
        old_records, old_slots = self._records, self._slots
        self._new_table(slots)
        self._records = records = bytearray()
        for entry in old_slots:
            if entry >= 0:
                offset = entry >> 32
                lengths = _HEAD.unpack_from(old_records, offset)[:4]
                start = offset + _HEAD.size
                self._place(hash(bytes(old_records[start : start + lengths[0]])), len(records), entry >> 16 & 0xFFFF)
                records += old_records[offset : start + sum(lengths)]
        self._dead_bytes = 0

    def clear(self) -> None:
        self._records = bytearray()
        self._live = self._dead_bytes = 0
        self._new_table(_FIRST_SLOTS)


def _sliced(records: bytearray, offset: int) -> Record:
    """A record read by slicing (the reader of the layouts past the 65,535th)."""
    n_impi, n_impu, n_to_impi, n_to_impu, owner, created, expires = _HEAD.unpack_from(records, offset)
    start = offset + _HEAD.size
    impu_at = start + n_impi
    to_impi_at = impu_at + n_impu
    to_impu_at = to_impi_at + n_to_impi
    return (owner, created, expires, bytes(records[start:impu_at]), bytes(records[impu_at:to_impi_at]),
            bytes(records[to_impi_at:to_impu_at]), bytes(records[to_impu_at : to_impu_at + n_to_impu]))
