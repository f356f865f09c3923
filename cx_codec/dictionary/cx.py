"""Cx application, 3GPP TS 29.229: AVPs (§6.3, vendor 10415), commands (§6.1), grammars.

Also the AVPs of other specifications that Cx grammars name: NASREQ's Framed-* (RFC 7155,
vendor 0) and ETSI's Line-Identifier (ETSI TS 183 033, vendor 13019).
"""

VENDOR = 10415

APPLICATIONS = {16777216: "3GPP Cx"}

# code, name, type, flags (TS 29.229 §6.3 table 6.3.1: "M" where the M bit MUST be set)
AVPS = [
    (600, "Visited-Network-Identifier", "OctetString", "M"),
    (601, "Public-Identity", "UTF8String", "M"),
    (602, "Server-Name", "UTF8String", "M"),
    (603, "Server-Capabilities", "Grouped", "M"),
    (604, "Mandatory-Capability", "Unsigned32", "M"),
    (605, "Optional-Capability", "Unsigned32", "M"),
    (606, "User-Data", "OctetString", "M"),
    (607, "SIP-Number-Auth-Items", "Unsigned32", "M"),
    (608, "SIP-Authentication-Scheme", "UTF8String", "M"),
    (609, "SIP-Authenticate", "OctetString", "M"),
    (610, "SIP-Authorization", "OctetString", "M"),
    (611, "SIP-Authentication-Context", "OctetString", "M"),
    (612, "SIP-Auth-Data-Item", "Grouped", "M"),
    (613, "SIP-Item-Number", "Unsigned32", "M"),
    (614, "Server-Assignment-Type", "Enumerated", "M"),
    (615, "Deregistration-Reason", "Grouped", "M"),
    (616, "Reason-Code", "Enumerated", "M"),
    (617, "Reason-Info", "UTF8String", "M"),
    (618, "Charging-Information", "Grouped", "M"),
    (619, "Primary-Event-Charging-Function-Name", "DiameterURI", "M"),
    (620, "Secondary-Event-Charging-Function-Name", "DiameterURI", "M"),
    (621, "Primary-Charging-Collection-Function-Name", "DiameterURI", "M"),
    (622, "Secondary-Charging-Collection-Function-Name", "DiameterURI", "M"),
    (623, "User-Authorization-Type", "Enumerated", "M"),
    (624, "User-Data-Already-Available", "Enumerated", "M"),
    (625, "Confidentiality-Key", "OctetString", "M"),
    (626, "Integrity-Key", "OctetString", "M"),
    (628, "Supported-Features", "Grouped", ""),
    (629, "Feature-List-ID", "Unsigned32", ""),
    (630, "Feature-List", "Unsigned32", ""),
    (631, "Supported-Applications", "Grouped", ""),
    (632, "Associated-Identities", "Grouped", ""),
    (633, "Originating-Request", "Enumerated", "M"),
    (634, "Wildcarded-Public-Identity", "UTF8String", ""),
    (635, "SIP-Digest-Authenticate", "Grouped", ""),
    # NASREQ (RFC 7155 §4.4.10) and ETSI AVPs named by SIP-Auth-Data-Item (TS 29.229 §6.3.13)
    (8, "Framed-IP-Address", "OctetString", "M", 0),
    (96, "Framed-Interface-Id", "Unsigned64", "M", 0),
    (97, "Framed-IPv6-Prefix", "OctetString", "M", 0),
    (500, "Line-Identifier", "OctetString", "", 13019),
]

ENUMS = {}

GRAMMARS = """
<Multimedia-Auth-Request> ::= < Diameter Header: 303, REQ, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                { Destination-Realm }
                [ Destination-Host ]
                { User-Name }
                [ OC-Supported-Features ]
              * [ Supported-Features ]
                { Public-Identity }
                { SIP-Auth-Data-Item }
                { SIP-Number-Auth-Items }
                { Server-Name }
              * [ AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Multimedia-Auth-Answer> ::= < Diameter Header: 303, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                [ Result-Code ]
                [ Experimental-Result ]
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                [ User-Name ]
                [ OC-Supported-Features ]
                [ OC-OLR ]
              * [ Load ]
              * [ Supported-Features ]
                [ Public-Identity ]
                [ SIP-Number-Auth-Items ]
              * [ SIP-Auth-Data-Item ]
              * [ AVP ]
                [ Failed-AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<SIP-Auth-Data-Item> ::= < AVP Header: 612 10415 >
                [ SIP-Item-Number ]
                [ SIP-Authentication-Scheme ]
                [ SIP-Authenticate ]
                [ SIP-Authorization ]
                [ SIP-Authentication-Context ]
                [ Confidentiality-Key ]
                [ Integrity-Key ]
                [ SIP-Digest-Authenticate ]
                [ Framed-IP-Address ]
                [ Framed-IPv6-Prefix ]
                [ Framed-Interface-Id ]
              * [ Line-Identifier ]
              * [ AVP ]

<SIP-Digest-Authenticate> ::= < AVP Header: 635 10415 >
                { Digest-Realm }
                [ Digest-Algorithm ]
                { Digest-Qop }
                { Digest-HA1 }
              * [ AVP ]

<Supported-Features> ::= < AVP Header: 628 10415 >
                { Vendor-Id }
                { Feature-List-ID }
                { Feature-List }
              * [ AVP ]

<Server-Capabilities> ::= < AVP Header: 603 10415 >
              * [ Mandatory-Capability ]
              * [ Optional-Capability ]
              * [ Server-Name ]
              * [ AVP ]

<Deregistration-Reason> ::= < AVP Header: 615 10415 >
                { Reason-Code }
                [ Reason-Info ]
              * [ AVP ]

<Charging-Information> ::= < AVP Header: 618 10415 >
                [ Primary-Event-Charging-Function-Name ]
                [ Secondary-Event-Charging-Function-Name ]
                [ Primary-Charging-Collection-Function-Name ]
                [ Secondary-Charging-Collection-Function-Name ]
              * [ AVP ]

<Supported-Applications> ::= < AVP Header: 631 10415 >
              * [ Auth-Application-Id ]
              * [ Acct-Application-Id ]
              * [ Vendor-Specific-Application-Id ]
              * [ AVP ]

<Associated-Identities> ::= < AVP Header: 632 10415 >
              * [ User-Name ]
              * [ AVP ]
"""
