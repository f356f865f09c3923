"""The `hss` role: the primary SIP database on Cx (TS 29.228 §6, TS 29.229 §6.1), answered
from hss_store. Where SQN is advanced: ``HssStore.multimedia_auth`` (one transaction: the
SQNs are committed before the MAA leaves).

- MAR: AKA vectors (Digest-AKAv1-MD5, Digest-AKAv2-SHA-256), as many SIP-Auth-Data-Items as
  asked up to ``max_vectors`` (more asked for is capped, not an error), the scheme
  ``Unknown`` resolved to the subscriber's, re-synchronisation from SIP-Authorization =
  RAND || AUTS, the IMPU checked against the IMPI, the Server-Name stored.
- SAR: the Server-Name stored or cleared by Server-Assignment-Type, an IMS user profile in
  User-Data where one is wanted.
- UAR: FIRST_REGISTRATION, or SUBSEQUENT_REGISTRATION with the S-CSCF already assigned.
- LIR: the S-CSCF serving a public identity.

Every failure is an answer (``failure_answer``), never silence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from cx_codec import Message, error_answer
from cx_codec.errors import ResultCode
from gateway.applications.cx import (
    Command,
    CxResult,
    Local,
    auth_request,
    experimental_answer,
    identities,
    location_info_answer,
    multimedia_auth_answer,
    server_assignment_answer,
    user_authorization_answer,
)
from gateway.applications.storage import StoreAccess
from hss_store.errors import InvalidIdentity, InvalidRequest, ResyncFailure, StoreError
from hss_store.records import STORES_SERVER_NAME

log = Logger(namespace="cxgw.hss")

# TS 29.229 §6.3.26 User-Data-Already-Available: USER_DATA_ALREADY_AVAILABLE
USER_DATA_ALREADY_AVAILABLE = 1


class HssApplication:
    def __init__(self, store: StoreAccess, local: Local, max_vectors: int = 5) -> None:
        self.store = store
        self.local = local
        self.max_vectors = max_vectors
        self._handlers: dict[int, Callable[[Message], Deferred[bytes]]] = {
            Command.MAR: self.multimedia_auth,
            Command.SAR: self.server_assignment,
            Command.UAR: self.user_authorization,
            Command.LIR: self.location_info,
        }

    def handle_message(self, message: Message, peer: Any) -> Deferred[bytes]:
        handler = self._handlers.get(message.command_code)
        if handler is None:  # RTR, PPR: requests an HSS sends, not answers
            return succeed(failure_answer(message, self.local, ResultCode.DIAMETER_COMMAND_UNSUPPORTED,
                                          f"the HSS does not serve command {message.command_code}"))
        return handler(message)

    # -- TS 29.228 §6.3: authentication ----------------------------------------------------
    def multimedia_auth(self, message: Message) -> Deferred[bytes]:
        request = auth_request(message)
        store = self.store.store
        result = self.store.call(
            store.multimedia_auth, request.impi, request.impu, request.scheme, request.count,
            rand_auts=request.rand_auts, server_name=request.server_name or None, max_count=self.max_vectors,
        )
        result.addCallback(
            lambda auth: multimedia_auth_answer(message, self.local, auth.impi, auth.impu, auth.scheme, auth.vectors)
        )
        return result.addErrback(self._failed, message)

    # -- TS 29.228 §6.1.2: S-CSCF registration / de-registration notification ---------------
    def server_assignment(self, message: Message) -> Deferred[bytes]:
        impi, impus = identities(message)
        assignment = int(message["Server-Assignment-Type"])  # type: ignore[call-overload]
        if impi is None:
            return succeed(experimental_answer(message, self.local, CxResult.ERROR_USER_UNKNOWN,
                                               "SAR without User-Name: this HSS needs the private identity"))
        store = self.store.store
        result = self.store.call(
            store.server_assignment, impi, impus[0] if impus else None, str(message.get("Server-Name") or "") or None,
            assignment,
        )
        wants_profile = (
            assignment in STORES_SERVER_NAME  # the registrations (TS 29.228 §6.1.2.1)
            and int(message.get("User-Data-Already-Available", 0)) != USER_DATA_ALREADY_AVAILABLE  # type: ignore[call-overload]
        )
        result.addCallback(
            lambda subscriber: server_assignment_answer(message, self.local, subscriber.impi, subscriber.impus, wants_profile)
        )
        return result.addErrback(self._failed, message)

    # -- TS 29.228 §6.1.1: which S-CSCF, at a registration -----------------------------------
    def user_authorization(self, message: Message) -> Deferred[bytes]:
        impi, impus = identities(message)
        store = self.store.store

        def check() -> str | None:
            store.check_impu(impi, impus[0])  # type: ignore[arg-type]
            return store.get_scscf_name(impi)  # type: ignore[arg-type]

        result = self.store.call(check)
        result.addCallback(
            lambda name: user_authorization_answer(
                message, self.local,
                CxResult.SUBSEQUENT_REGISTRATION if name else CxResult.FIRST_REGISTRATION, name,
            )
        )
        return result.addErrback(self._failed, message)

    # -- TS 29.228 §6.2.1: which S-CSCF serves a public identity ------------------------------
    def location_info(self, message: Message) -> Deferred[bytes]:
        impu = str(message["Public-Identity"])
        store = self.store.store

        def find() -> str | None:
            return store.get_scscf_name(store.impi_of_impu(impu))

        result = self.store.call(find)
        result.addCallback(lambda name: location_info_answer(message, self.local, name))
        return result.addErrback(self._failed, message)

    def _failed(self, failure: Failure, message: Message) -> bytes:
        return store_failure_answer(message, self.local, failure)


def store_failure_answer(message: Message, local: Local, failure: Failure) -> bytes:
    """The answer to a request the store refused or could not serve (TS 29.229 §6.2)."""
    error = failure.value
    code = getattr(error, "experimental_result", None)
    if code is not None:  # 5001 unknown user, 5002 identities don't match, 5006 scheme
        log.info("{command}: {error}", command=message.name, error=error)
        return experimental_answer(message, local, code, str(error))
    if isinstance(error, ResyncFailure):
        # TS 33.102 §6.3.5: AUTS whose MAC-S fails; the SQN was left as it was
        log.warn("{command}: {error}", command=message.name, error=error)
        return failure_answer(message, local, ResultCode.DIAMETER_AUTHORIZATION_REJECTED, str(error))
    if isinstance(error, InvalidRequest | InvalidIdentity):
        log.info("{command}: {error}", command=message.name, error=error)
        return failure_answer(message, local, ResultCode.DIAMETER_UNABLE_TO_COMPLY, str(error))
    if isinstance(error, StoreError):
        log.warn("{command}: the store failed: {error}", command=message.name, error=error)
    else:
        log.failure("{command}: failure while serving", failure, command=message.name)
    return failure_answer(message, local, ResultCode.DIAMETER_UNABLE_TO_COMPLY, "the SIP database is unavailable")


def invalid_answer(message: Message, local: Local, error: Exception, source: str) -> bytes:
    """The requester's answer when the answer of ``source`` (the other side of a
    translation) fails strict decoding: 5012 with the requester's identities, and a warning."""
    log.warn("{command}: the answer of {source} is not valid Cx ({error}); answered 5012",
             command=message.name, source=source, error=error)
    return failure_answer(message, local, ResultCode.DIAMETER_UNABLE_TO_COMPLY, f"the answer of {source} was not valid Cx")


def failure_answer(message: Message, local: Local, code: int, reason: str) -> bytes:
    """A Result-Code answer that echoes User-Name and Public-Identity (cx_codec.error_answer)."""
    return error_answer(
        message, code, origin_host=local.host, origin_realm=local.realm, error_message=reason[:200]
    ).encode()
