"""The partner's MAR inside the relay's read loop (TR 23.781 solution 2, steps 17-20, at
relay speed): what ``Proxy.local`` and ``PartnerApplication.multimedia_auth`` do for the
usual registration, without decoding into objects and without Deferreds.

The relay's hot loop (gateway.routing.relay) hands a request served here to
``CxService.fast_request``; the partner role takes a MAR when

- it passes strict decoding (``cx_codec.message.strict_layout``: the codec's verdict,
  taken from the layouts it validated before; RFC 6733 §7),
- it is no retransmission (T flag: the duplicate cache of ``Proxy.local`` answers those),
- its scheme is no Digest one and it carries no SIP-Authorization (re-synchronisation),
- its inbound IMPI has an active binding with that IMPU (``caches.InboundBindingCache``),
- the primary SIP database is reachable the simple way (one available peer within the
  pending limits) and ``Proxy.admit_local`` admits it (limits, no copy being served).

Everything else, every error answer included, goes down the general path, which answers
it as before; nothing is changed before that decision. What the two paths share rather
than copy: the translation (gateway.applications.translation), the bookkeeping of local
work (``Proxy.admit_local`` / ``local_answer``), the answer of the node's own requests
(``Proxy.own_answer``, which hands the primary's answer to ``TranslatedAnswer.answered``
and also takes this path's 3002 on timeout or a peer down);
``tests/gateway/test_fastpath.py`` proves the answers equal, error cases included.

The bindings of a read's MARs are read together: the first MAR of a read asks
``InboundBindingCache.prefetch`` for those of all its MARs (``user_names``), one SQLite
statement where one each would walk the index from its root every time.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from cx_codec import DecodeError, decode
from cx_codec.message import strict_layout
from gateway.applications.cx import DIGEST_SCHEMES, MAA_COPIED, UNKNOWN_SCHEME, VENDOR_3GPP, Command
from gateway.applications.translation import (
    AnswerTranslator,
    Identities,
    InvalidAnswer,
    RequestTranslator,
    splice_layout,
)
from gateway.routing.pending import PendingRequest, PendingRequests

if TYPE_CHECKING:
    from cx_codec.splice import Splice
    from gateway.applications.caches import ActiveBinding
    from gateway.applications.partner import PartnerApplication

_MAR = Command.MAR
FLAG_T = 0x10  # RFC 6733 §3: a retransmission
# (code, vendor) of the AVPs read here (TS 29.229 §6.3, RFC 6733 §8.8, §6.3)
_USER_NAME, _PUBLIC_IDENTITY, _ORIGIN_HOST, _SESSION_ID = (1, 0), (601, VENDOR_3GPP), (264, 0), (263, 0)
_SIP_AUTH_DATA_ITEM, _SCHEME, _AUTHORIZATION = (612, VENDOR_3GPP), 608, 610
_SIP_NUMBER_AUTH_ITEMS, _SERVER_NAME = (607, VENDOR_3GPP), (602, VENDOR_3GPP)
_UNKNOWN = object()  # not asked yet


class MarLayout:
    """Where the AVPs a fast MAR needs are, in one layout validated by the codec (an
    ``avp.TemplateEntry`` per top-level AVP): data offsets of User-Name, the first
    Public-Identity, Origin-Host, and the SIP-Auth-Data-Item's bytes; None where absent."""

    __slots__ = ("entries", "layout", "user_name", "public_identity", "origin_host", "session_id", "item",
                 "number", "server_name", "usable", "splices", "copied_spans")

    def __init__(self, entries: tuple[Any, ...]) -> None:
        self.entries = entries
        self.layout = splice_layout(entries)
        found: dict[tuple[int, int], tuple[int, int]] = {}
        copied: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for offset, code, vendor, word in self.layout:
            key = (code, vendor)
            span = (offset + (12 if word & 0x80000000 else 8), offset + (word & 0xFFFFFF))
            if key not in found:  # the first of each, as rewrite() and Message.get take it
                found[key] = span
            if key in MAA_COPIED:
                copied.setdefault(key, []).append(span)
        # the data of the AVPs an MAA copies (cx.multimedia_auth_answer), every one in order
        self.copied_spans = tuple((key, tuple(spans)) for key, spans in copied.items())
        self.user_name = found.get(_USER_NAME)
        self.public_identity = found.get(_PUBLIC_IDENTITY)
        self.origin_host = found.get(_ORIGIN_HOST)
        self.session_id = found.get(_SESSION_ID)
        self.item = found.get(_SIP_AUTH_DATA_ITEM)
        self.number = found.get(_SIP_NUMBER_AUTH_ITEMS)
        self.server_name = found.get(_SERVER_NAME)
        # it has what every fast path reads (a strictly valid MAR has, TS 29.229 §6.1.7)
        self.usable = None not in (self.item, self.user_name, self.public_identity, self.origin_host)
        self.splices: list[Any] = [_UNKNOWN, _UNKNOWN]  # RequestTranslator.splice's, without and with a host

    def splice(self, requests: RequestTranslator, with_host: bool) -> Splice | None:
        """``requests.splice(self.layout, with_host)``, asked once per layout."""
        splice = self.splices[with_host]
        if splice is _UNKNOWN:
            splice = self.splices[with_host] = requests.splice(self.layout, with_host)
        return splice  # type: ignore[no-any-return]

    def copied(self, request: bytes) -> dict[tuple[int, int], list[bytes]]:
        """What ``top_level(request, MAA_COPIED)`` finds, from this layout's offsets."""
        return {key: [request[start:end] for start, end in spans] for key, spans in self.copied_spans}

    def fits(self) -> bool:
        """It has what every fast path reads (a strictly valid MAR has, TS 29.229 §6.1.7)."""
        return self.usable


class MarLayouts:
    """MarLayout per validated layout, and what each SIP-Auth-Data-Item asks."""

    def __init__(self) -> None:
        self._layouts: dict[int, MarLayout] = {}  # id(entries) -> layout (entries kept in it)
        self._items: dict[bytes, tuple[str, bool]] = {}  # SIP-Auth-Data-Item data -> what it asks
        self._plain: dict[bytes, bool] = {}  # SIP-Auth-Data-Item data -> ``plain``'s verdict

    def of(self, request: bytes) -> MarLayout | None:
        """The layout of a MAR that passes strict decoding and has what fast paths read,
        else None (the general path answers it)."""
        layout = self._layout(request)
        return layout if layout is not None and layout.usable else None

    def _layout(self, request: bytes) -> MarLayout | None:
        """The MarLayout of a strictly valid request (made at its layout's first use), or
        None: the general path answers the protocol error."""
        try:
            entries = strict_layout(request)
        except DecodeError:
            return None
        layout = self._layouts.get(id(entries))
        if layout is None or layout.entries is not entries:
            if len(self._layouts) >= 4096:
                self._layouts.clear()
            layout = self._layouts[id(entries)] = MarLayout(entries)
        return layout

    def plain_layout(self, request: bytes) -> MarLayout | None:
        """``of``'s layout where ``plain`` holds too, else None: the partner's verdict on a
        MAR in one call (RFC 6733 §7, TS 29.229 §6.3.13)."""
        layout = self._layout(request)
        if layout is None or not layout.usable:
            return None
        item = layout.item
        plain = self._plain.get(request[item[0] : item[1]])  # type: ignore[index]
        if plain is None:
            return self._plain_of(request, layout)
        return layout if plain else None

    def _plain_of(self, request: bytes, layout: MarLayout | None) -> MarLayout | None:
        return layout if layout is not None and self.plain(request, layout) else None

    def asked(self, request: bytes, layout: MarLayout) -> tuple[str, bool]:
        """(SIP-Authentication-Scheme, whether SIP-Authorization is there: a re-synchronisation)."""
        item = request[layout.item[0] : layout.item[1]]  # type: ignore[index]
        asked = self._items.get(item)
        if asked is None:
            asked = _item_members(item)
            if len(self._items) < 256:
                self._items[item] = asked
        return asked

    def plain(self, request: bytes, layout: MarLayout) -> bool:
        """The MAR asks for no Digest scheme (those are the general path's 5006) and is no
        re-synchronisation (a SIP-Authorization): ``asked``'s answer as one verdict."""
        item = request[layout.item[0] : layout.item[1]]  # type: ignore[index]
        plain = self._plain.get(item)
        if plain is None:
            scheme, resynchronisation = self.asked(request, layout)
            plain = not resynchronisation and scheme.casefold() not in DIGEST_SCHEMES
            if len(self._plain) < 256:
                self._plain[item] = plain
        return plain


def duplicate_key(request: bytes, layout: MarLayout) -> tuple[str, int]:
    """(Origin-Host, End-to-End id): Proxy.local's key for duplicate detection (RFC 6733 §6.1.3)."""
    host = request[layout.origin_host[0] : layout.origin_host[1]]  # type: ignore[index]
    return host.decode().lower(), int.from_bytes(request[16:20], "big")


_USER_NAME_HEADER = b"\x00\x00\x00\x01\x40"  # User-Name (1), M flag (RFC 6733 §8.14)


def user_names(data: bytes, offset: int) -> Iterator[str]:
    """The User-Names of the MARs (requests, no T flag) in ``data`` from ``offset``, as
    far as whole messages go, found by their AVP header's bytes, unchecked: the IMPIs whose
    bindings ``InboundBindingCache.prefetch`` reads at once. A wrong one only costs a key
    looked up for nothing; each MAR is still checked and looked up when served."""
    end = len(data)
    while offset + 20 <= end:
        stop = offset + int.from_bytes(data[offset + 1 : offset + 4], "big")
        if stop > end or stop < offset + 20:
            return
        if data[offset + 5 : offset + 8] == b"\x00\x01\x2f" and data[offset + 4] & 0x90 == 0x80:  # 303, R, no T
            at = data.find(_USER_NAME_HEADER, offset + 20, stop)
            if at >= 0:
                length = int.from_bytes(data[at + 5 : at + 8], "big")
                if 8 < length and at + length <= stop:
                    with contextlib.suppress(UnicodeDecodeError):  # (its MAR fails strict decoding anyway)
                        yield data[at + 8 : at + length].decode()
        offset = stop


def _item_members(data: bytes) -> tuple[str, bool]:
    """(SIP-Authentication-Scheme, whether SIP-Authorization is there) of the data of a
    SIP-Auth-Data-Item the codec accepted (TS 29.229 §6.3.13)."""
    scheme, authorization = None, False
    offset, end = 0, len(data)
    while offset + 8 <= end:
        code = int.from_bytes(data[offset : offset + 4], "big")
        flags, length = data[offset + 4], int.from_bytes(data[offset + 5 : offset + 8], "big")
        vendor = int.from_bytes(data[offset + 8 : offset + 12], "big") if flags & 0x80 else 0
        start = offset + (12 if flags & 0x80 else 8)
        if vendor == VENDOR_3GPP and code == _SCHEME and scheme is None:  # the first, as Avp.get
            scheme = data[start : offset + length].decode()
        elif vendor == VENDOR_3GPP and code == _AUTHORIZATION:
            authorization = True
        offset += (length + 3) & -4
    return scheme if scheme is not None else UNKNOWN_SCHEME, authorization


class PartnerFastPath:
    """``PartnerApplication.multimedia_auth`` for the usual MAR, in the read loop."""

    def __init__(self, partner: PartnerApplication, node: Any) -> None:
        self.partner = partner
        self.node = node
        self.proxy = node.proxy
        self.bindings = partner.bindings
        self.layouts = MarLayouts()
        self.requests = RequestTranslator(partner.local, partner.hide_topology)
        self.answers = AnswerTranslator(partner.local, partner.hide_topology)
        self._read: bytes | None = None  # the read whose bindings were asked for at once (kept: ``is``)

    def __call__(self, connection: Any, peer: Any, data: bytes, offset: int, stop: int) -> bool:
        if data[offset + 5 : offset + 8] != b"\x00\x01\x2f" or data[offset + 4] & FLAG_T:  # 303 MAR
            return False
        if self.node.routing.forwards_to(peer.host):
            return False  # a next hop's request: refused by the general path (CxService.handle_message)
        if data is not self._read:  # the first MAR of a read: the bindings of all its MARs, at once
            self._read = data
            if stop < len(data):
                self.bindings.prefetch(user_names(data, offset))
        request = data[offset:stop]
        layout = self.layouts.plain_layout(request)
        if layout is None:
            return False
        user_name = layout.user_name
        impi = request[user_name[0] : user_name[1]].decode()  # type: ignore[index]
        binding = self.bindings.lookup(impi)
        if binding is None:
            return False
        public_identity = layout.public_identity
        # (UTF-8 the codec validated: equal bytes, equal identities)
        if binding.inbound_impu != request[public_identity[0] : public_identity[1]]:  # type: ignore[index]
            return False  # 5002, from the general path
        node = self.node
        pending = node.pending
        target = self._target(binding, pending)
        if target is None:
            return False
        splice = layout.splices[binding.host is not None]
        if splice is _UNKNOWN:
            splice = layout.splice(self.requests, binding.host is not None)
        if splice is None:
            return False  # translate_request would refuse it: the general path answers
        hop_by_hop_in = int.from_bytes(request[12:16], "big")
        key = duplicate_key(request, layout)
        if not self.proxy.admit_local(connection, peer, key, hop_by_hop_in, _MAR):
            return False
        partner = self.partner
        hop_by_hop = pending.new_id()
        if partner.annotate is None:
            hide = partner.hide_topology
            forwarded = self.requests.translate_values(request, splice, binding.values, _U32.pack(hop_by_hop),
                                                       partner.new_end_to_end() if hide else None)
            # what the answer gets back (Restore, as bytes): the identities as the requester
            # sent them (valid UTF-8: decoded above), its Session-Id and End-to-End id
            session = layout.session_id
            if not hide:
                back, end_to_end = (request[user_name[0] : user_name[1]], binding.inbound_impu), None  # type: ignore[index]
            elif session is None:
                back, end_to_end = (request[user_name[0] : user_name[1]], binding.inbound_impu), request[16:20]  # type: ignore[index]
            else:
                back = (request[user_name[0] : user_name[1]], binding.inbound_impu, request[session[0] : session[1]])  # type: ignore[index]
                end_to_end = request[16:20]
        else:  # a recording node: the general path's translation, which names the binding in the capture
            translated, restore = partner.translate(request, binding.binding(),
                                                    Identities(impi, binding.inbound_impu.decode()))
            forwarded = translated[:12] + _U32.pack(hop_by_hop) + translated[16:]
            back, end_to_end = tuple(AnswerTranslator.values(restore)), restore.end_to_end
        # PendingRequests.add, as the relay's loop inserts its entries (the loop arms the
        # expiry timer once per read, after this)
        pending.entries[hop_by_hop] = _new_tuple(PendingRequest, (
            hop_by_hop, hop_by_hop_in, None, target, forwarded, node.now + pending.tx, _MAR, (),
            _new_tuple(TranslatedAnswer, (self, back, end_to_end, peer, key, request)),
        ))
        per_peer = pending.per_peer
        per_peer[target] = per_peer.get(target, 0) + 1
        target.connection.queue(forwarded)  # Peer.send (``_target``: the peer is available, so connected)
        return True

    def _target(self, binding: ActiveBinding, pending: PendingRequests) -> Any:
        """The peer ``Proxy.originate`` would choose for the translated MAR when the choice
        is simple (RFC 6733 §6.1.5: a Destination-Host that is an available peer, else the
        realm's single available target), within the pending limits; else None. (The
        pending tables read as the relay's loop reads them; ``Proxy.available``, inline.)"""
        node = self.node
        limits = node.limits
        if len(pending.entries) >= limits.max_pending:
            return None
        host_key = binding.host_key
        if host_key is None:
            route = node.routing.lookup(binding.realm, _CX)
            if route is None or len(route.targets) != 1:
                return None
            host_key = route.targets[0].host.lower()
        target = node.peers.get(host_key)
        if target is None or not target.available or pending.per_peer.get(target, 0) >= limits.max_pending_per_peer:
            return None
        return target


_CX = 16777216
_U32 = struct.Struct(">I")
_new_tuple = tuple.__new__


class TranslatedAnswer(NamedTuple):
    """Where the answer to a MAR sent on by the fast path goes: the pending entry's
    ``deferred``. ``Proxy.own_answer`` gives it the primary's answer (``answered``: the
    hop-by-hop id put back in the translation's copy), ``Proxy.deliver`` this node's 3002
    (``callback``, as to a Deferred); either is treated as
    ``PartnerApplication._translated_back`` and ``Proxy.local``'s callbacks would treat it.
    ``back`` and ``end_to_end``: the Restore's content as
    ``AnswerTranslator.translate_with`` takes it. A tuple: made with ``tuple.__new__``."""

    fast: PartnerFastPath
    back: tuple[bytes, ...]
    end_to_end: bytes | None
    peer: Any
    key: tuple[str, int]
    request: bytes

    def callback(self, answer: bytes) -> None:
        """The answer with the requester's hop-by-hop id already in it (``Proxy.deliver``)."""
        self.answered(answer, None)

    def answered(self, answer: bytes, hop_by_hop: int | None) -> None:
        """The answer as it came (its hop-by-hop id ours: ``hop_by_hop`` goes in), or as
        ``callback`` gives it (None)."""
        fast = self.fast
        try:
            translated = fast.answers.translate_with(  # step 20
                answer, self.back, self.end_to_end, None if hop_by_hop is None else _U32.pack(hop_by_hop))
        except InvalidAnswer as error:  # as PartnerApplication._translated_back: 5012
            translated = fast.partner.invalid_answer(decode(self.request), error)
        except DecodeError as error:  # a splice that failed: local work that failed, 5012
            fast.proxy.local_failed(error, self.peer, self.key, self.request)
            return
        else:
            outcomes = fast.partner.outcomes  # PartnerApplication.count, inline
            outcomes["forwarded"] = outcomes.get("forwarded", 0) + 1
        fast.proxy.local_answer(translated, self.peer, self.key, _MAR)
