"""cx_codec: Diameter base (RFC 6733) and Cx (TS 29.229) messages, bytes <-> objects.

No I/O, no Twisted, no store. Decoding is strict and reports the RFC 6733 result code
and the offending AVP; decoded messages keep their bytes so that untouched messages
and unknown AVPs pass through byte-identical.
"""

from cx_codec.avp import Avp
from cx_codec.build import answer_for, error_answer, error_answer_bytes, grouped, new_request
from cx_codec.dictionary import DEFAULT_DICTIONARY, Dictionary
from cx_codec.errors import DecodeError, EncodeError
from cx_codec.header import Flags, Header
from cx_codec.message import Message, decode, decode_lazy

__all__ = [
    "Avp",
    "DEFAULT_DICTIONARY",
    "DecodeError",
    "Dictionary",
    "EncodeError",
    "Flags",
    "Header",
    "Message",
    "answer_for",
    "decode",
    "decode_lazy",
    "error_answer",
    "error_answer_bytes",
    "grouped",
    "new_request",
]
