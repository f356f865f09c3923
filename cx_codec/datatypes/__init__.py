"""AVP data types of RFC 6733 §4.2 (basic) and §4.3 (derived), as one table.

``CODECS[data_type] = (decode, encode)``: ``decode(bytes) -> value`` raises DecodeError
with the result code (5004 invalid value, 5014 invalid length); ``encode(value) -> bytes``
raises EncodeError. Grouped AVPs are not in the table: the message layer handles them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from cx_codec.datatypes.address import decode_address, encode_address
from cx_codec.datatypes.numbers import (
    decode_float32,
    decode_float64,
    decode_integer32,
    decode_integer64,
    decode_unsigned32,
    decode_unsigned64,
    encode_float32,
    encode_float64,
    encode_integer32,
    encode_integer64,
    encode_unsigned32,
    encode_unsigned64,
)
from cx_codec.datatypes.strings import (
    decode_ascii_rule,
    decode_identity,
    decode_octetstring,
    decode_uri,
    decode_utf8string,
    encode_identity,
    encode_octetstring,
    encode_uri,
    encode_utf8string,
)
from cx_codec.datatypes.time import decode_time, encode_time


class DataType(Enum):
    OctetString = "OctetString"
    Integer32 = "Integer32"
    Integer64 = "Integer64"
    Unsigned32 = "Unsigned32"
    Unsigned64 = "Unsigned64"
    Float32 = "Float32"
    Float64 = "Float64"
    Grouped = "Grouped"
    Address = "Address"
    Time = "Time"
    UTF8String = "UTF8String"
    DiameterIdentity = "DiameterIdentity"
    DiameterURI = "DiameterURI"
    Enumerated = "Enumerated"
    IPFilterRule = "IPFilterRule"
    QoSFilterRule = "QoSFilterRule"


Decoder = Callable[[bytes], object]
Encoder = Callable[[object], bytes]

CODECS: dict[DataType, tuple[Decoder, Encoder]] = {
    DataType.OctetString: (decode_octetstring, encode_octetstring),
    DataType.Integer32: (decode_integer32, encode_integer32),
    DataType.Integer64: (decode_integer64, encode_integer64),
    DataType.Unsigned32: (decode_unsigned32, encode_unsigned32),
    DataType.Unsigned64: (decode_unsigned64, encode_unsigned64),
    DataType.Float32: (decode_float32, encode_float32),
    DataType.Float64: (decode_float64, encode_float64),
    DataType.Address: (decode_address, encode_address),
    DataType.Time: (decode_time, encode_time),
    DataType.UTF8String: (decode_utf8string, encode_utf8string),
    DataType.DiameterIdentity: (decode_identity, encode_identity),
    DataType.DiameterURI: (decode_uri, encode_uri),
    # RFC 6733 §4.3.1: Enumerated is derived from Integer32
    DataType.Enumerated: (decode_integer32, encode_integer32),
    DataType.IPFilterRule: (decode_ascii_rule, encode_utf8string),
    DataType.QoSFilterRule: (decode_ascii_rule, encode_utf8string),
}

# Smallest valid data of each type: used for the example AVP of a missing AVP in
# Failed-AVP (RFC 6733 §7.5: "of correct minimum length and contain zeroes").
MINIMUM_DATA: dict[DataType, bytes] = {
    DataType.Integer32: bytes(4),
    DataType.Enumerated: bytes(4),
    DataType.Unsigned32: bytes(4),
    DataType.Float32: bytes(4),
    DataType.Time: bytes(4),
    DataType.Integer64: bytes(8),
    DataType.Unsigned64: bytes(8),
    DataType.Float64: bytes(8),
    DataType.Address: b"\x00\x01" + bytes(4),
}

__all__ = ["CODECS", "DataType", "Decoder", "Encoder", "MINIMUM_DATA"]
