"""Cx application, 3GPP TS 29.229: AVPs (§6.3, vendor 10415), commands (§6.1), grammars.

Transcribed from TS 29.229 (Release 17/18 text; §6.1.1-6.1.12 command grammars, table
6.3.1 for codes, types and flag rules, §6.3.x for the Grouped grammars and the
Enumerated values). Cross-checked against Wireshark's ``diameter/TGPP.xml`` (codes,
types, enum values), Erlang/OTP-style ``3gpp_ts29_229`` dictionaries (codes, types,
grammars), Nokia's and sipgate's Cx dictionaries (M-bit rules of 628-666) and a
go-diameter transcription of TS 29.229 V19.1.0 (flag rules, grammars). Where Wireshark
disagrees on the M bit (it marks 628-634, 653-655, 657-658 "must") the spec's table wins.

Flag rules (table 6.3.1): 600-626 and 633 MUST set M; Supported-Features (628) MAY set
M; every later Cx AVP (629-632, 634-666) MUST NOT set M. V is always set (vendor 10415).

Also the AVPs of other specifications that Cx grammars name: NASREQ's Framed-* (RFC 7155
§4.4.10, vendor 0) and ETSI's Line-Identifier (ETSI ES 283 034, vendor 13019).

Not here: 627 (User-Data-Request-Type, removed in Rel-6) and 667 OC-Reg-Timer-Ext, which
only the Release 19 text has.
"""

VENDOR = 10415

APPLICATIONS = {16777216: "3GPP Cx"}

# code, name, type, flags (TS 29.229 table 6.3.1: "M" MUST, "" MAY, "-" MUST NOT set M)
AVPS = [
    (600, "Visited-Network-Identifier", "OctetString", "M"),  # §6.3.1
    (601, "Public-Identity", "UTF8String", "M"),  # §6.3.2
    (602, "Server-Name", "UTF8String", "M"),  # §6.3.3
    (603, "Server-Capabilities", "Grouped", "M"),  # §6.3.4
    (604, "Mandatory-Capability", "Unsigned32", "M"),  # §6.3.5
    (605, "Optional-Capability", "Unsigned32", "M"),  # §6.3.6
    (606, "User-Data", "OctetString", "M"),  # §6.3.7
    (607, "SIP-Number-Auth-Items", "Unsigned32", "M"),  # §6.3.8
    (608, "SIP-Authentication-Scheme", "UTF8String", "M"),  # §6.3.9
    (609, "SIP-Authenticate", "OctetString", "M"),  # §6.3.10
    (610, "SIP-Authorization", "OctetString", "M"),  # §6.3.11
    (611, "SIP-Authentication-Context", "OctetString", "M"),  # §6.3.12
    (612, "SIP-Auth-Data-Item", "Grouped", "M"),  # §6.3.13
    (613, "SIP-Item-Number", "Unsigned32", "M"),  # §6.3.14
    (614, "Server-Assignment-Type", "Enumerated", "M"),  # §6.3.15
    (615, "Deregistration-Reason", "Grouped", "M"),  # §6.3.16
    (616, "Reason-Code", "Enumerated", "M"),  # §6.3.17
    (617, "Reason-Info", "UTF8String", "M"),  # §6.3.18
    (618, "Charging-Information", "Grouped", "M"),  # §6.3.19
    (619, "Primary-Event-Charging-Function-Name", "DiameterURI", "M"),  # §6.3.20
    (620, "Secondary-Event-Charging-Function-Name", "DiameterURI", "M"),  # §6.3.21
    (621, "Primary-Charging-Collection-Function-Name", "DiameterURI", "M"),  # §6.3.22
    (622, "Secondary-Charging-Collection-Function-Name", "DiameterURI", "M"),  # §6.3.23
    (623, "User-Authorization-Type", "Enumerated", "M"),  # §6.3.24
    (624, "User-Data-Already-Available", "Enumerated", "M"),  # §6.3.26
    (625, "Confidentiality-Key", "OctetString", "M"),  # §6.3.27
    (626, "Integrity-Key", "OctetString", "M"),  # §6.3.28
    (628, "Supported-Features", "Grouped", ""),  # §6.3.29: M "May"
    (629, "Feature-List-ID", "Unsigned32", "-"),  # §6.3.30
    (630, "Feature-List", "Unsigned32", "-"),  # §6.3.31
    (631, "Supported-Applications", "Grouped", "-"),  # §6.3.32
    (632, "Associated-Identities", "Grouped", "-"),  # §6.3.33
    (633, "Originating-Request", "Enumerated", "M"),  # §6.3.34
    (634, "Wildcarded-Public-Identity", "UTF8String", "-"),  # §6.3.35 (was Wildcarded-PSI)
    (635, "SIP-Digest-Authenticate", "Grouped", "-"),  # §6.3.36
    (636, "Wildcarded-IMPU", "UTF8String", "-"),  # §6.3.43
    (637, "UAR-Flags", "Unsigned32", "-"),  # §6.3.44
    (638, "Loose-Route-Indication", "Enumerated", "-"),  # §6.3.45
    (639, "SCSCF-Restoration-Info", "Grouped", "-"),  # §6.3.46
    (640, "Path", "OctetString", "-"),  # §6.3.47
    (641, "Contact", "OctetString", "-"),  # §6.3.48
    (642, "Subscription-Info", "Grouped", "-"),  # §6.3.49
    (643, "Call-ID-SIP-Header", "OctetString", "-"),  # §6.3.49.1
    (644, "From-SIP-Header", "OctetString", "-"),  # §6.3.49.2
    (645, "To-SIP-Header", "OctetString", "-"),  # §6.3.49.3
    (646, "Record-Route", "OctetString", "-"),  # §6.3.49.4
    (647, "Associated-Registered-Identities", "Grouped", "-"),  # §6.3.50
    (648, "Multiple-Registration-Indication", "Enumerated", "-"),  # §6.3.51
    (649, "Restoration-Info", "Grouped", "-"),  # §6.3.52
    (650, "Session-Priority", "Enumerated", "-"),  # §6.3.56
    (651, "Identity-with-Emergency-Registration", "Grouped", "-"),  # §6.3.57
    (652, "Priviledged-Sender-Indication", "Enumerated", "-"),  # §6.3.58 (sic, the spec's spelling)
    (653, "LIA-Flags", "Unsigned32", "-"),  # §6.3.59
    (654, "Initial-CSeq-Sequence-Number", "Unsigned32", "-"),  # §6.3.62
    (655, "SAR-Flags", "Unsigned32", "-"),  # §6.3.63
    (656, "Allowed-WAF-WWSF-Identities", "Grouped", "-"),  # §6.3.64
    (657, "WebRTC-Authentication-Function-Name", "UTF8String", "-"),  # §6.3.65
    (658, "WebRTC-Web-Server-Function-Name", "UTF8String", "-"),  # §6.3.66
    (659, "RTR-Flags", "Unsigned32", "-"),  # §6.3.69
    (660, "P-CSCF-Subscription-Info", "Grouped", "-"),  # §6.3.70
    (661, "Registration-Time-Out", "Time", "-"),  # §6.3.71
    (662, "Alternate-Digest-Algorithm", "UTF8String", "-"),  # §6.3.72
    (663, "Alternate-Digest-HA1", "UTF8String", "-"),  # §6.3.73
    (664, "Failed-PCSCF", "Grouped", "-"),  # §6.3.74
    (665, "PCSCF-FQDN", "DiameterIdentity", "-"),  # §6.3.75
    (666, "PCSCF-IP-Address", "Address", "-"),  # §6.3.76
    # NASREQ (RFC 7155 §4.4.10: M MUST) and ETSI AVPs named by SIP-Auth-Data-Item (§6.3.13)
    (8, "Framed-IP-Address", "OctetString", "M", 0),
    (96, "Framed-Interface-Id", "Unsigned64", "M", 0),
    (97, "Framed-IPv6-Prefix", "OctetString", "M", 0),
    (500, "Line-Identifier", "OctetString", "", 13019),
]

ENUMS = {
    # §6.3.15
    "Server-Assignment-Type": {
        0: "NO_ASSIGNMENT",
        1: "REGISTRATION",
        2: "RE_REGISTRATION",
        3: "UNREGISTERED_USER",
        4: "TIMEOUT_DEREGISTRATION",
        5: "USER_DEREGISTRATION",
        6: "TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME",
        7: "USER_DEREGISTRATION_STORE_SERVER_NAME",
        8: "ADMINISTRATIVE_DEREGISTRATION",
        9: "AUTHENTICATION_FAILURE",
        10: "AUTHENTICATION_TIMEOUT",
        11: "DEREGISTRATION_TOO_MUCH_DATA",
        12: "AAA_USER_DATA_REQUEST",
        13: "PGW_UPDATE",
        14: "RESTORATION",
    },
    # §6.3.17
    "Reason-Code": {
        0: "PERMANENT_TERMINATION",
        1: "NEW_SERVER_ASSIGNED",
        2: "SERVER_CHANGE",
        3: "REMOVE_S-CSCF",
    },
    # §6.3.24
    "User-Authorization-Type": {0: "REGISTRATION", 1: "DE_REGISTRATION", 2: "REGISTRATION_AND_CAPABILITIES"},
    # §6.3.26
    "User-Data-Already-Available": {0: "USER_DATA_NOT_AVAILABLE", 1: "USER_DATA_ALREADY_AVAILABLE"},
    # §6.3.34
    "Originating-Request": {0: "ORIGINATING"},
    # §6.3.45
    "Loose-Route-Indication": {0: "LOOSE_ROUTE_NOT_REQUIRED", 1: "LOOSE_ROUTE_REQUIRED"},
    # §6.3.51
    "Multiple-Registration-Indication": {0: "NOT_MULTIPLE_REGISTRATION", 1: "MULTIPLE_REGISTRATION"},
    # §6.3.56
    "Session-Priority": {value: f"PRIORITY-{value}" for value in range(5)},
    # §6.3.58
    "Priviledged-Sender-Indication": {0: "NOT_PRIVILEDGED_SENDER", 1: "PRIVILEDGED_SENDER"},
}

# Bit masks (Unsigned32 AVPs): bit number -> meaning, for display and checks.
FLAG_BITS = {
    "UAR-Flags": {0: "IMS Emergency Registration"},  # §6.3.44
    "LIA-Flags": {0: "PSI Direct Routing Indication"},  # §6.3.59
    "SAR-Flags": {0: "P-CSCF Restoration Indication"},  # §6.3.63
    "RTR-Flags": {0: "Reference Location Information change"},  # §6.3.69
}

GRAMMARS = """
<User-Authorization-Request> ::= < Diameter Header: 300, REQ, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                [ Destination-Host ]
                { Destination-Realm }
                { User-Name }
                [ OC-Supported-Features ]
              * [ Supported-Features ]
                { Public-Identity }
                { Visited-Network-Identifier }
                [ User-Authorization-Type ]
                [ UAR-Flags ]
              * [ AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<User-Authorization-Answer> ::= < Diameter Header: 300, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                [ Result-Code ]
                [ Experimental-Result ]
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                [ OC-Supported-Features ]
                [ OC-OLR ]
              * [ Load ]
              * [ Supported-Features ]
                [ Server-Name ]
                [ Server-Capabilities ]
              * [ AVP ]
                [ Failed-AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Server-Assignment-Request> ::= < Diameter Header: 301, REQ, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                [ Destination-Host ]
                { Destination-Realm }
                [ User-Name ]
                [ OC-Supported-Features ]
              * [ Supported-Features ]
              * [ Public-Identity ]
                [ Wildcarded-Public-Identity ]
                { Server-Name }
                { Server-Assignment-Type }
                { User-Data-Already-Available }
                [ SCSCF-Restoration-Info ]
                [ Multiple-Registration-Indication ]
                [ Session-Priority ]
                [ SAR-Flags ]
                [ Failed-PCSCF ]
              * [ AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Server-Assignment-Answer> ::= < Diameter Header: 301, PXY, 16777216 >
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
                [ User-Data ]
                [ Charging-Information ]
                [ Associated-Identities ]
                [ Loose-Route-Indication ]
              * [ SCSCF-Restoration-Info ]
                [ Associated-Registered-Identities ]
                [ Server-Name ]
                [ Wildcarded-Public-Identity ]
                [ Priviledged-Sender-Indication ]
                [ Allowed-WAF-WWSF-Identities ]
              * [ AVP ]
                [ Failed-AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Location-Info-Request> ::= < Diameter Header: 302, REQ, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                [ Destination-Host ]
                { Destination-Realm }
                [ Originating-Request ]
                [ OC-Supported-Features ]
              * [ Supported-Features ]
                { Public-Identity }
                [ User-Authorization-Type ]
                [ Session-Priority ]
              * [ AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Location-Info-Answer> ::= < Diameter Header: 302, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                [ Result-Code ]
                [ Experimental-Result ]
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                [ OC-Supported-Features ]
                [ OC-OLR ]
              * [ Load ]
              * [ Supported-Features ]
                [ Server-Name ]
                [ Server-Capabilities ]
                [ Wildcarded-Public-Identity ]
                [ LIA-Flags ]
              * [ AVP ]
                [ Failed-AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

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

<Registration-Termination-Request> ::= < Diameter Header: 304, REQ, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                { Destination-Host }
                { Destination-Realm }
                { User-Name }
                [ Associated-Identities ]
              * [ Supported-Features ]
              * [ Public-Identity ]
                { Deregistration-Reason }
                [ RTR-Flags ]
              * [ AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Registration-Termination-Answer> ::= < Diameter Header: 304, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                [ Result-Code ]
                [ Experimental-Result ]
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                [ Associated-Identities ]
              * [ Supported-Features ]
              * [ Identity-with-Emergency-Registration ]
              * [ AVP ]
                [ Failed-AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Push-Profile-Request> ::= < Diameter Header: 305, REQ, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
                { Destination-Host }
                { Destination-Realm }
                { User-Name }
              * [ Supported-Features ]
                [ User-Data ]
                [ Charging-Information ]
                [ SIP-Auth-Data-Item ]
                [ Allowed-WAF-WWSF-Identities ]
              * [ AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Push-Profile-Answer> ::= < Diameter Header: 305, PXY, 16777216 >
                < Session-Id >
                [ DRMP ]
                { Vendor-Specific-Application-Id }
                [ Result-Code ]
                [ Experimental-Result ]
                { Auth-Session-State }
                { Origin-Host }
                { Origin-Realm }
              * [ Supported-Features ]
              * [ AVP ]
                [ Failed-AVP ]
              * [ Proxy-Info ]
              * [ Route-Record ]

<Server-Capabilities> ::= < AVP Header: 603 10415 >
              * [ Mandatory-Capability ]
              * [ Optional-Capability ]
              * [ Server-Name ]
              * [ AVP ]

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

<Supported-Features> ::= < AVP Header: 628 10415 >
                { Vendor-Id }
                { Feature-List-ID }
                { Feature-List }
              * [ AVP ]

<Supported-Applications> ::= < AVP Header: 631 10415 >
              * [ Auth-Application-Id ]
              * [ Acct-Application-Id ]
              * [ Vendor-Specific-Application-Id ]
              * [ AVP ]

<Associated-Identities> ::= < AVP Header: 632 10415 >
              * [ User-Name ]
              * [ AVP ]

<SIP-Digest-Authenticate> ::= < AVP Header: 635 10415 >
                { Digest-Realm }
                [ Digest-Algorithm ]
                { Digest-Qop }
                { Digest-HA1 }
                [ Alternate-Digest-Algorithm ]
                [ Alternate-Digest-HA1 ]
              * [ AVP ]

<SCSCF-Restoration-Info> ::= < AVP Header: 639 10415 >
                { User-Name }
             1* { Restoration-Info }
                [ Registration-Time-Out ]
                [ SIP-Authentication-Scheme ]
              * [ AVP ]

<Subscription-Info> ::= < AVP Header: 642 10415 >
                { Call-ID-SIP-Header }
                { From-SIP-Header }
                { To-SIP-Header }
                { Record-Route }
                { Contact }
              * [ AVP ]

<Associated-Registered-Identities> ::= < AVP Header: 647 10415 >
              * [ User-Name ]
              * [ AVP ]

<Restoration-Info> ::= < AVP Header: 649 10415 >
                { Path }
                { Contact }
                [ Initial-CSeq-Sequence-Number ]
                [ Call-ID-SIP-Header ]
                [ Subscription-Info ]
                [ P-CSCF-Subscription-Info ]
              * [ AVP ]

<Identity-with-Emergency-Registration> ::= < AVP Header: 651 10415 >
                { User-Name }
                { Public-Identity }
              * [ AVP ]

<Allowed-WAF-WWSF-Identities> ::= < AVP Header: 656 10415 >
              * [ WebRTC-Authentication-Function-Name ]
              * [ WebRTC-Web-Server-Function-Name ]
              * [ AVP ]

<P-CSCF-Subscription-Info> ::= < AVP Header: 660 10415 >
                { Call-ID-SIP-Header }
                { From-SIP-Header }
                { To-SIP-Header }
                { Contact }
              * [ AVP ]

<Failed-PCSCF> ::= < AVP Header: 664 10415 >
                [ PCSCF-FQDN ]
              * [ PCSCF-IP-Address ]
              * [ AVP ]
"""
