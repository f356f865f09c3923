"""Migration bindings packed in memory: every active binding of a SIP database, at about
190 bytes each (1,000,000 bindings in some 190 MB), looked up in about 2 microseconds.

The partner role reads an inbound binding for every MAR (TR 23.781 solution 2, step 17),
the primary role an outbound one (step 19). Read from SQLite among a million a binding
costs about 12 us (bench/RESULTS.md, session 6), more than the rest of the translation;
held as Python objects it costs half a kilobyte, in a dict of packed bytes some 280 bytes.
Here, hand-written because no library packs string records this way: one open-addressing
table of the IMPIs' hashes (linear probing, at most half full) in two ``array`` columns,
and the records appended to one ``bytearray``:

    record = header (the four identities' lengths; the owner's number: the primary SIP
             database of an inbound binding, the partner of an outbound one; creation
             time; expiry or -1) || IMPI, IMPU, and the identities they stand for
             (primary or real), in UTF-8

A removed record leaves its bytes behind until they are more than the live ones, then the
whole is packed again. The hash is Python's own (SipHash, seeded per process): a peer
cannot choose IMPIs that collide, and a lookup always compares the IMPI itself.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Hashable, Iterator

_HEAD = struct.Struct(">HHHHHqq")  # 4 lengths, the owner's number, created_at, expires_at (-1: never)
_EMPTY, _REMOVED = -1, -2  # a slot's offset when it holds no record
_NEVER = -1
_FIRST_SLOTS = 1024

Found = tuple[bytes, bytes, bytes, Hashable, int, "int | None"]


class PackedBindings:
    """Bindings by IMPI (UTF-8 bytes), packed: ``find`` gives (IMPU, the IMPI and IMPU it
    stands for, owner, created_at, expires_at), the identities as UTF-8 bytes as a message
    carries them."""

    def __init__(self) -> None:
        self._owners: list[Hashable] = []
        self._owner_numbers: dict[Hashable, int] = {}
        self._records = bytearray()
        self._live = 0
        self._dead_bytes = 0
        self._new_table(_FIRST_SLOTS)

    def _new_table(self, slots: int) -> None:
        self._mask = slots - 1
        self._hashes = array("q", bytes(8 * slots))
        self._offsets = array("q", [_EMPTY]) * slots
        self._used = 0  # slots holding a record or a removal mark

    def __len__(self) -> int:
        return self._live

    @property
    def nbytes(self) -> int:
        """Memory held: records, removed ones not yet packed away, and the table."""
        return len(self._records) + 16 * (self._mask + 1)

    # -- reads ------------------------------------------------------------------------------
    def _slot(self, impi: bytes) -> int:
        """The slot of ``impi``'s record, or -1."""
        digest = hash(impi)
        mask, hashes, offsets, records = self._mask, self._hashes, self._offsets, self._records
        slot = digest & mask
        while True:
            offset = offsets[slot]
            if offset == _EMPTY:
                return -1
            if offset >= 0 and hashes[slot] == digest:
                length = records[offset] << 8 | records[offset + 1]
                start = offset + _HEAD.size
                if records[start : start + length] == impi:
                    return slot
            slot = (slot + 1) & mask

    def find(self, impi: bytes) -> Found | None:
        """(IMPU, the IMPI and IMPU it stands for, owner, created_at, expires_at) of
        ``impi``'s binding; None when there is none."""
        slot = self._slot(impi)
        if slot < 0:
            return None
        records = self._records
        offset = self._offsets[slot]
        n_impi, n_impu, n_to_impi, n_to_impu, owner, created, expires = _HEAD.unpack_from(records, offset)
        start = offset + _HEAD.size + n_impi
        middle = start + n_impu
        end = middle + n_to_impi
        return (bytes(records[start:middle]), bytes(records[middle:end]), bytes(records[end : end + n_to_impu]),
                self._owners[owner], created, None if expires == _NEVER else expires)

    def __contains__(self, impi: bytes) -> bool:
        return self._slot(impi) >= 0

    def __iter__(self) -> Iterator[bytes]:
        """The IMPIs held (UTF-8)."""
        records = self._records
        for offset in self._offsets:
            if offset >= 0:
                length = records[offset] << 8 | records[offset + 1]
                yield bytes(records[offset + _HEAD.size : offset + _HEAD.size + length])

    # -- writes -----------------------------------------------------------------------------
    def put(self, impi: bytes, impu: bytes, to_impi: bytes, to_impu: bytes, owner: Hashable, created_at: int,
            expires_at: int | None) -> None:
        """Keep a binding (replacing the one of its IMPI); the identities in UTF-8."""
        parts = (impi, impu, to_impi, to_impu)
        if max(map(len, parts)) > 0xFFFF:
            raise ValueError(f"an identity of the binding of {impi!r} is longer than 65,535 octets")
        self.remove(parts[0])
        number = self._owner_numbers.get(owner)
        if number is None:
            if len(self._owners) > 0xFFFF:
                raise ValueError(f"more than 65,536 owners of bindings (the last: {owner!r})")
            number = self._owner_numbers[owner] = len(self._owners)
            self._owners.append(owner)
        if (self._used + 1) * 2 > self._mask + 1:
            self._repack(2 * (self._mask + 1) if (self._live + 1) * 4 > self._mask + 1 else self._mask + 1)
        offset = len(self._records)
        self._records += _HEAD.pack(*map(len, parts), number, created_at, _NEVER if expires_at is None else expires_at)
        self._records += b"".join(parts)
        self._place(hash(parts[0]), offset)
        self._live += 1

    def _place(self, digest: int, offset: int) -> None:
        mask, offsets = self._mask, self._offsets
        slot = digest & mask
        while offsets[slot] >= 0:  # (a removal mark is reused)
            slot = (slot + 1) & mask
        if offsets[slot] == _EMPTY:
            self._used += 1
        self._hashes[slot], offsets[slot] = digest, offset

    def remove(self, impi: bytes) -> bool:
        """Drop the binding of ``impi``; whether there was one."""
        slot = self._slot(impi)
        if slot < 0:
            return False
        offset = self._offsets[slot]
        self._offsets[slot] = _REMOVED
        self._live -= 1
        self._dead_bytes += _HEAD.size + sum(_HEAD.unpack_from(self._records, offset)[:4])
        if self._dead_bytes > len(self._records) // 2:
            self._repack(self._mask + 1)
        return True

    def _repack(self, slots: int) -> None:
        """Copy the live records into a new table of ``slots`` slots and a new bytearray."""
        old_records, old_offsets, old_hashes = self._records, self._offsets, self._hashes
        self._new_table(slots)
        self._records = bytearray()
        for slot, offset in enumerate(old_offsets):
            if offset >= 0:
                size = _HEAD.size + sum(_HEAD.unpack_from(old_records, offset)[:4])
                self._place(old_hashes[slot], len(self._records))
                self._records += old_records[offset : offset + size]
        self._dead_bytes = 0

    def clear(self) -> None:
        self._records = bytearray()
        self._live = self._dead_bytes = 0
        self._new_table(_FIRST_SLOTS)
