"""The HSS's MARs in the relay's read loop, one store transaction per read (group commit):
what ``HssApplication.multimedia_auth`` and ``PrimaryApplication`` do for the usual MAR
(TS 29.228 §6.3, TR 23.781 solution 2, step 19), without Deferreds.

Each MAR of a read that the fast path takes (strictly valid, no retransmission, no
re-synchronisation; for the `primary` role, identities the partner may use, checked as
``PrimaryApplication._real_identities`` checks them) is admitted as local work
(``Proxy.admit_local``) and kept; at the end of the read
(``StreamRelay.after_read``) ``HssStore.multimedia_auth_many`` claims the SQNs of all of
them in one transaction, and only after its commit are vectors made and answers queued:
an SQN is durable before any answer carrying it is written
(``tests/hss_store/test_durability.py``). A MAR the store refuses gets the answer the
general path gives (``store_failure_answer``), and the primary's answers carry the
identities the partner sent (``translate_answer`` of the HSS's answer, which for an MAA
built here is the MAA built with those identities). Only for a store called in the
reactor thread (SQLite); the general path serves the rest. ``tests/gateway/test_hss_batch.py``
proves the answers the same as the general path's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.python.failure import Failure

from cx_codec import decode
from gateway.applications.cx import DIGEST_SCHEMES, Command, multimedia_auth_answer
from gateway.applications.fastpath import FLAG_T, MarLayout, MarLayouts, duplicate_key
from gateway.applications.hss import store_failure_answer
from gateway.applications.translation import Identities, Restore, translate_request
from hss_store.errors import StoreError, StoreUnavailable
from hss_store.records import AuthResult

if TYPE_CHECKING:
    from gateway.applications.hss import HssApplication
    from gateway.applications.primary import PrimaryApplication

_MAR = Command.MAR
_MAR_CODE = b"\x00\x01\x2f"  # 303 in the header's command code field


class _Work:
    """One admitted MAR: the store's arguments, and who made the request."""

    __slots__ = ("request", "layout", "peer", "key", "arguments", "sent", "real")

    def __init__(self, request: bytes, layout: MarLayout, peer: Any, key: tuple[str, int], arguments: tuple[Any, ...],
                 sent: Identities | None = None, real: Identities | None = None) -> None:
        self.request, self.layout, self.peer, self.key, self.arguments = request, layout, peer, key, arguments
        self.sent, self.real = sent, real  # the primary role's: what the partner sent, the real user


class HssBatch:
    """The `hss` role's MARs (and, with ``primary``, the `primary` role's) of one read."""

    def __init__(self, hss: HssApplication, node: Any, primary: PrimaryApplication | None = None) -> None:
        self.hss = hss
        self.primary = primary
        self.node = node
        self.proxy = node.proxy
        self.store = hss.store.store
        self.layouts = MarLayouts()
        self._work: list[_Work] = []

    # -- the read loop's calls (gateway.routing.relay.FastRequest) -------------------------
    def hss_request(self, connection: Any, peer: Any, data: bytes, offset: int, stop: int) -> bool:
        """A MAR to the `hss` role (an S-CSCF's, or a plain IMS core's)."""
        found = self._mar(data, offset, stop)
        if found is None:
            return False
        request, layout, scheme = found
        impi, impu = _text(request, layout.user_name), _text(request, layout.public_identity)
        return self._admit(connection, peer, request, layout, (impi, impu, scheme, *self._asked(request, layout)))

    def primary_request(self, connection: Any, peer: Any, data: bytes, offset: int, stop: int) -> bool:
        """A MAR from a partner gateway to the `primary` role, with the HSS in this process."""
        primary = self.primary
        found = self._mar(data, offset, stop)
        if found is None or primary is None:
            return False
        request, layout, scheme = found
        if scheme.casefold() in DIGEST_SCHEMES:
            return False  # 5006, from the general path
        sent = Identities(_text(request, layout.user_name), _text(request, layout.public_identity))
        partner_id = primary.partners.get(peer.host.lower())
        if partner_id is None:
            return False
        try:
            real = primary._real_identities(partner_id, sent.impi, sent.impu)
        except Exception:
            return False  # refused (5001, 5002) or failing: the general path answers and logs why
        arguments = (real.impi, real.impu, scheme, *self._asked(request, layout))
        return self._admit(connection, peer, request, layout, arguments, sent, real)

    def _mar(self, data: bytes, offset: int, stop: int) -> tuple[bytes, MarLayout, str] | None:
        if data[offset + 5 : offset + 8] != _MAR_CODE or data[offset + 4] & FLAG_T or not self.store.in_process:
            return None
        request = data[offset:stop]
        layout = self.layouts.of(request)
        if layout is None:
            return None
        scheme, resynchronisation = self.layouts.asked(request, layout)
        if resynchronisation:
            return None  # RAND || AUTS: the general path (rare, and checked with care)
        return request, layout, scheme

    def _asked(self, request: bytes, layout: MarLayout) -> tuple[int, None, str | None, int]:
        """(count, RAND || AUTS, Server-Name, the vector cap), as auth_request reads them."""
        number = layout.number
        count = int.from_bytes(request[number[0] : number[1]], "big") if number is not None else 1
        server_name = _text(request, layout.server_name) if layout.server_name is not None else ""
        return count, None, server_name or None, self.hss.max_vectors

    def _admit(self, connection: Any, peer: Any, request: bytes, layout: MarLayout, arguments: tuple[Any, ...],
               sent: Identities | None = None, real: Identities | None = None) -> bool:
        key = duplicate_key(request, layout)
        if not self.proxy.admit_local(connection, peer, key, int.from_bytes(request[12:16], "big"), _MAR):
            return False
        if not self._work:
            self.node.relay.after_read.append(self.finish)
        self._work.append(_Work(request, layout, peer, key, arguments, sent, real))
        return True

    # -- the end of the read ------------------------------------------------------------------
    def finish(self) -> None:
        """One transaction for the read's MARs (committed before any answer is made), then
        every answer; whatever fails, each admitted MAR gets its answer."""
        work, self._work = self._work, []
        try:
            results: list[AuthResult | StoreError] = self.store.multimedia_auth_many([w.arguments for w in work])
        except StoreError as error:
            results = [error] * len(work)
        except Exception as error:  # as StoreAccess.call has it: a bug or a broken file, 5012
            results = [StoreUnavailable(f"the store failed: {error!r}")] * len(work)
        proxy = self.proxy
        for item, result in zip(work, results, strict=True):
            try:
                answer = self._answer(item, result)
            except Exception as error:  # what local()'s errback does: 5012
                proxy.local_failed(error, item.peer, item.key, item.request)
                continue
            proxy.local_answer(answer, item.peer, item.key, _MAR)

    def _answer(self, item: _Work, result: AuthResult | StoreError) -> bytes:
        hss, primary = self.hss, self.primary
        if item.sent is None:  # the hss role: HssApplication.multimedia_auth
            if isinstance(result, StoreError):
                return store_failure_answer(decode(item.request), hss.local, Failure(result))
            return multimedia_auth_answer(item.request, hss.local, result.impi, result.impu, result.scheme,
                                          result.vectors, item.layout.copied(item.request))
        assert primary is not None and item.real is not None
        if isinstance(result, StoreError):  # the HSS's answer, translated back (PrimaryApplication._ask_hss)
            inner = translate_request(item.request, item.real, None, primary.local, hide_topology=False)
            answer = store_failure_answer(decode(inner), hss.local, Failure(result))
            return primary._translated_back(answer, Restore(item.sent, None), decode(item.request))
        primary._count("answered")
        # translate_answer of the HSS's MAA puts back the identities sent and (hiding the
        # topology) this node's Origin-Host/Realm: the MAA built with those at once
        local = primary.local if primary.hide_topology else hss.local
        return multimedia_auth_answer(item.request, local, item.sent.impi, item.sent.impu, result.scheme,
                                      result.vectors, item.layout.copied(item.request))


def _text(request: bytes, where: tuple[int, int] | None) -> str:
    return request[where[0] : where[1]].decode() if where is not None else ""
