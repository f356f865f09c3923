"""RFC 7683 Diameter Overload Indication Conveyance AVPs (vendor 0, §7).

Codes 621-627 collide by number with Cx AVPs of vendor 10415: key by (code, vendor).
"""

VENDOR = 0

# code, name, type, flags (RFC 7683 §7: M bit MUST NOT be set)
AVPS = [
    (621, "OC-Supported-Features", "Grouped", ""),
    (622, "OC-Feature-Vector", "Unsigned64", ""),
    (623, "OC-OLR", "Grouped", ""),
    (624, "OC-Sequence-Number", "Unsigned64", ""),
    (625, "OC-Validity-Duration", "Unsigned32", ""),
    (626, "OC-Report-Type", "Enumerated", ""),
    (627, "OC-Reduction-Percentage", "Unsigned32", ""),
]

ENUMS = {
    "OC-Report-Type": {0: "HOST_REPORT", 1: "REALM_REPORT"},
}

GRAMMARS = """
<OC-Supported-Features> ::= < AVP Header: 621 >
                [ OC-Feature-Vector ]
              * [ AVP ]

<OC-OLR> ::= < AVP Header: 623 >
                < OC-Sequence-Number >
                < OC-Report-Type >
                [ OC-Reduction-Percentage ]
                [ OC-Validity-Duration ]
              * [ AVP ]
"""
