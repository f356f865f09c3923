"""Typed codec errors. Every malformed input surfaces as a DecodeError, never anything else.

A DecodeError carries what a node needs to answer as RFC 6733 §7 asks: the result code
and, where §7.5 wants one, the bytes of the AVP to put in Failed-AVP.
"""

from __future__ import annotations


class ResultCode:
    """RFC 6733 §7.1 result codes the codec can report (names as in the RFC)."""

    DIAMETER_SUCCESS = 2001
    DIAMETER_COMMAND_UNSUPPORTED = 3001
    DIAMETER_UNABLE_TO_DELIVER = 3002
    DIAMETER_REALM_NOT_SERVED = 3003
    DIAMETER_TOO_BUSY = 3004
    DIAMETER_LOOP_DETECTED = 3005
    DIAMETER_REDIRECT_INDICATION = 3006
    DIAMETER_APPLICATION_UNSUPPORTED = 3007
    DIAMETER_INVALID_HDR_BITS = 3008
    DIAMETER_INVALID_AVP_BITS = 3009
    DIAMETER_UNKNOWN_PEER = 3010
    DIAMETER_AVP_UNSUPPORTED = 5001
    DIAMETER_UNKNOWN_SESSION_ID = 5002
    DIAMETER_AUTHORIZATION_REJECTED = 5003
    DIAMETER_INVALID_AVP_VALUE = 5004
    DIAMETER_MISSING_AVP = 5005
    DIAMETER_RESOURCES_EXCEEDED = 5006
    DIAMETER_CONTRADICTING_AVPS = 5007
    DIAMETER_AVP_NOT_ALLOWED = 5008
    DIAMETER_AVP_OCCURS_TOO_MANY_TIMES = 5009
    DIAMETER_NO_COMMON_APPLICATION = 5010
    DIAMETER_UNSUPPORTED_VERSION = 5011
    DIAMETER_UNABLE_TO_COMPLY = 5012
    DIAMETER_INVALID_BIT_IN_HEADER = 5013
    DIAMETER_INVALID_AVP_LENGTH = 5014
    DIAMETER_INVALID_MESSAGE_LENGTH = 5015


RESULT_CODE_NAMES: dict[int, str] = {
    value: name for name, value in vars(ResultCode).items() if name.startswith("DIAMETER_")
}


class CodecError(Exception):
    """Base of the codec's errors."""


class DecodeError(CodecError):
    """Malformed or invalid input.

    ``result_code`` is the RFC 6733 code to answer with; ``failed_avp`` the raw bytes of
    the offending AVP (or of an example of the missing one, RFC 6733 §7.5) or None;
    ``fatal`` means the byte stream framing is lost (5015, 5011 on a stream): the
    connection cannot be trusted any further.
    """

    def __init__(
        self,
        result_code: int,
        reason: str,
        failed_avp: bytes | None = None,
        *,
        fatal: bool = False,
    ) -> None:
        self.result_code = result_code
        self.reason = reason
        self.failed_avp = failed_avp
        self.fatal = fatal
        name = RESULT_CODE_NAMES.get(result_code, "")
        super().__init__(f"{result_code} {name}: {reason}")


class EncodeError(CodecError, ValueError):
    """A value that cannot be encoded as the AVP's data type, or an unknown AVP name."""
