"""RFC 7683 Diameter Overload Indication Conveyance AVPs (vendor 0, §7), with RFC 8581.

RFC 7683 §7.7 (AVP flag rules): M MUST NOT be set on any of them; V MAY. A peer that sets
M on one is answered 3009 DIAMETER_INVALID_AVP_BITS by strict decoding. RFC 8581 (DOIC
peer overload) adds OC-Peer-Algo (648), the PEER_REPORT report type and SourceID (649,
defined with Load in base.py) as members of both grouped AVPs.

Codes 621-627 collide by number with Cx AVPs of vendor 10415, and 648 with Cx
Multiple-Registration-Indication: key by (code, vendor).
"""

VENDOR = 0

# code, name, type, flags ("-": M MUST NOT be set, RFC 7683 §7.7 and RFC 8581 §7)
AVPS = [
    (621, "OC-Supported-Features", "Grouped", "-"),  # RFC 7683 §7.1
    (622, "OC-Feature-Vector", "Unsigned64", "-"),  # §7.2
    (623, "OC-OLR", "Grouped", "-"),  # §7.3
    (624, "OC-Sequence-Number", "Unsigned64", "-"),  # §7.4
    (625, "OC-Validity-Duration", "Unsigned32", "-"),  # §7.5
    (626, "OC-Report-Type", "Enumerated", "-"),  # §7.6
    (627, "OC-Reduction-Percentage", "Unsigned32", "-"),  # §7.7
    (648, "OC-Peer-Algo", "Unsigned64", "-"),  # RFC 8581 §7
]

ENUMS = {
    # RFC 7683 §7.6; PEER_REPORT: RFC 8581 §7
    "OC-Report-Type": {0: "HOST_REPORT", 1: "REALM_REPORT", 2: "PEER_REPORT"},
}

# OC-Feature-Vector bits (RFC 7683 §7.2, RFC 8581 §7)
OC_FEATURE_VECTOR_BITS = {0x1: "OLR_DEFAULT_ALGO", 0x10: "OLR_PEER_REPORT"}

GRAMMARS = """
<OC-Supported-Features> ::= < AVP Header: 621 >
                [ OC-Feature-Vector ]
                [ OC-Peer-Algo ]
                [ SourceID ]
              * [ AVP ]

<OC-OLR> ::= < AVP Header: 623 >
                < OC-Sequence-Number >
                < OC-Report-Type >
                [ OC-Reduction-Percentage ]
                [ OC-Validity-Duration ]
                [ SourceID ]
              * [ AVP ]
"""
