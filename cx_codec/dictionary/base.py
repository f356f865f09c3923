"""RFC 6733 base protocol: AVPs (§4.5 table), commands (§5) and the error answer (§7.2).

Also the base-protocol extensions every Cx grammar names: DRMP (RFC 7944) and Load
(RFC 8583).
"""

VENDOR = 0

APPLICATIONS = {0: "Diameter Common Messages", 0xFFFFFFFF: "Relay"}

# code, name, type, flags (RFC 6733 §4.5: "M" MUST set M, "-" MUST NOT set M)
AVPS = [
    (1, "User-Name", "UTF8String", "M"),
    (25, "Class", "OctetString", "M"),
    (27, "Session-Timeout", "Unsigned32", "M"),
    (33, "Proxy-State", "OctetString", "M"),
    (44, "Acct-Session-Id", "OctetString", "M"),
    (50, "Acct-Multi-Session-Id", "UTF8String", "M"),
    (55, "Event-Timestamp", "Time", "M"),
    (85, "Acct-Interim-Interval", "Unsigned32", "M"),
    (257, "Host-IP-Address", "Address", "M"),
    (258, "Auth-Application-Id", "Unsigned32", "M"),
    (259, "Acct-Application-Id", "Unsigned32", "M"),
    (260, "Vendor-Specific-Application-Id", "Grouped", "M"),
    (261, "Redirect-Host-Usage", "Enumerated", "M"),
    (262, "Redirect-Max-Cache-Time", "Unsigned32", "M"),
    (263, "Session-Id", "UTF8String", "M"),
    (264, "Origin-Host", "DiameterIdentity", "M"),
    (265, "Supported-Vendor-Id", "Unsigned32", "M"),
    (266, "Vendor-Id", "Unsigned32", "M"),
    (267, "Firmware-Revision", "Unsigned32", "-"),
    (268, "Result-Code", "Unsigned32", "M"),
    (269, "Product-Name", "UTF8String", "-"),
    (270, "Session-Binding", "Unsigned32", "M"),
    (271, "Session-Server-Failover", "Enumerated", "M"),
    (272, "Multi-Round-Time-Out", "Unsigned32", "M"),
    (273, "Disconnect-Cause", "Enumerated", "M"),
    (274, "Auth-Request-Type", "Enumerated", "M"),
    (276, "Auth-Grace-Period", "Unsigned32", "M"),
    (277, "Auth-Session-State", "Enumerated", "M"),
    (278, "Origin-State-Id", "Unsigned32", "M"),
    (279, "Failed-AVP", "Grouped", "M"),
    (280, "Proxy-Host", "DiameterIdentity", "M"),
    (281, "Error-Message", "UTF8String", "-"),
    (282, "Route-Record", "DiameterIdentity", "M"),
    (283, "Destination-Realm", "DiameterIdentity", "M"),
    (284, "Proxy-Info", "Grouped", "M"),
    (285, "Re-Auth-Request-Type", "Enumerated", "M"),
    (287, "Accounting-Sub-Session-Id", "Unsigned64", "M"),
    (291, "Authorization-Lifetime", "Unsigned32", "M"),
    (292, "Redirect-Host", "DiameterURI", "M"),
    (293, "Destination-Host", "DiameterIdentity", "M"),
    (294, "Error-Reporting-Host", "DiameterIdentity", "-"),
    (295, "Termination-Cause", "Enumerated", "M"),
    (296, "Origin-Realm", "DiameterIdentity", "M"),
    (297, "Experimental-Result", "Grouped", "M"),
    (298, "Experimental-Result-Code", "Unsigned32", "M"),
    (299, "Inband-Security-Id", "Unsigned32", "M"),
    (300, "E2E-Sequence", "Grouped", "M"),
    (480, "Accounting-Record-Type", "Enumerated", "M"),
    (483, "Accounting-Realtime-Required", "Enumerated", "M"),
    (485, "Accounting-Record-Number", "Unsigned32", "M"),
    # RFC 7944 §9.1: DRMP, M bit MUST NOT be set
    (301, "DRMP", "Enumerated", "-"),
    # RFC 8583 §7: Load and its members, M bit MUST NOT be set
    (649, "SourceID", "DiameterIdentity", "-"),
    (650, "Load", "Grouped", "-"),
    (651, "Load-Type", "Enumerated", "-"),
    (652, "Load-Value", "Unsigned64", "-"),
]

ENUMS = {
    "Auth-Session-State": {0: "STATE_MAINTAINED", 1: "NO_STATE_MAINTAINED"},
    "Disconnect-Cause": {0: "REBOOTING", 1: "BUSY", 2: "DO_NOT_WANT_TO_TALK_TO_YOU"},
    "Redirect-Host-Usage": {
        0: "DONT_CACHE",
        1: "ALL_SESSION",
        2: "ALL_REALM",
        3: "REALM_AND_APPLICATION",
        4: "ALL_APPLICATION",
        5: "ALL_HOST",
        6: "ALL_USER",
    },
    "Auth-Request-Type": {1: "AUTHENTICATE_ONLY", 2: "AUTHORIZE_ONLY", 3: "AUTHORIZE_AUTHENTICATE"},
    "Re-Auth-Request-Type": {0: "AUTHORIZE_ONLY", 1: "AUTHORIZE_AUTHENTICATE"},
    "Session-Server-Failover": {
        0: "REFUSE_SERVICE",
        1: "TRY_AGAIN",
        2: "ALLOW_SERVICE",
        3: "TRY_AGAIN_ALLOW_SERVICE",
    },
    "Termination-Cause": {
        1: "DIAMETER_LOGOUT",
        2: "DIAMETER_SERVICE_NOT_PROVIDED",
        3: "DIAMETER_BAD_ANSWER",
        4: "DIAMETER_ADMINISTRATIVE",
        5: "DIAMETER_LINK_BROKEN",
        6: "DIAMETER_AUTH_EXPIRED",
        7: "DIAMETER_USER_MOVED",
        8: "DIAMETER_SESSION_TIMEOUT",
    },
    "Accounting-Record-Type": {1: "EVENT_RECORD", 2: "START_RECORD", 3: "INTERIM_RECORD", 4: "STOP_RECORD"},
    "Accounting-Realtime-Required": {1: "DELIVER_AND_GRANT", 2: "GRANT_AND_STORE", 3: "GRANT_AND_LOSE"},
    "DRMP": {value: f"PRIORITY_{value}" for value in range(16)},
    "Load-Type": {0: "HOST", 1: "PEER"},
}

GRAMMARS = """
<Capabilities-Exchange-Request> ::= < Diameter Header: 257, REQ >
                { Origin-Host }
                { Origin-Realm }
             1* { Host-IP-Address }
                { Vendor-Id }
                { Product-Name }
                [ Origin-State-Id ]
              * [ Supported-Vendor-Id ]
              * [ Auth-Application-Id ]
              * [ Inband-Security-Id ]
              * [ Acct-Application-Id ]
              * [ Vendor-Specific-Application-Id ]
                [ Firmware-Revision ]
              * [ AVP ]

<Capabilities-Exchange-Answer> ::= < Diameter Header: 257 >
                { Result-Code }
                { Origin-Host }
                { Origin-Realm }
             1* { Host-IP-Address }
                { Vendor-Id }
                { Product-Name }
                [ Origin-State-Id ]
                [ Error-Message ]
                [ Failed-AVP ]
              * [ Supported-Vendor-Id ]
              * [ Auth-Application-Id ]
              * [ Inband-Security-Id ]
              * [ Acct-Application-Id ]
              * [ Vendor-Specific-Application-Id ]
                [ Firmware-Revision ]
              * [ AVP ]

<Disconnect-Peer-Request> ::= < Diameter Header: 282, REQ >
                { Origin-Host }
                { Origin-Realm }
                { Disconnect-Cause }
              * [ AVP ]

<Disconnect-Peer-Answer> ::= < Diameter Header: 282 >
                { Result-Code }
                { Origin-Host }
                { Origin-Realm }
                [ Error-Message ]
                [ Failed-AVP ]
              * [ AVP ]

<Device-Watchdog-Request> ::= < Diameter Header: 280, REQ >
                { Origin-Host }
                { Origin-Realm }
                [ Origin-State-Id ]
              * [ AVP ]

<Device-Watchdog-Answer> ::= < Diameter Header: 280 >
                { Result-Code }
                { Origin-Host }
                { Origin-Realm }
                [ Error-Message ]
                [ Failed-AVP ]
                [ Origin-State-Id ]
              * [ AVP ]

<Answer-Message> ::= < Diameter Header: 0, ERR, PXY >
            0*1 < Session-Id >
                { Origin-Host }
                { Origin-Realm }
                { Result-Code }
                [ Origin-State-Id ]
                [ Error-Message ]
                [ Error-Reporting-Host ]
                [ Failed-AVP ]
                [ Experimental-Result ]
              * [ Proxy-Info ]
              * [ AVP ]

<Vendor-Specific-Application-Id> ::= < AVP Header: 260 >
                { Vendor-Id }
                [ Auth-Application-Id ]
                [ Acct-Application-Id ]

<Experimental-Result> ::= < AVP Header: 297 >
                { Vendor-Id }
                { Experimental-Result-Code }

<Failed-AVP> ::= < AVP Header: 279 >
             1* { AVP }

<Proxy-Info> ::= < AVP Header: 284 >
                { Proxy-Host }
                { Proxy-State }
              * [ AVP ]

<E2E-Sequence> ::= < AVP Header: 300 >
             2* { AVP }

<Load> ::= < AVP Header: 650 >
                [ Load-Type ]
                [ Load-Value ]
                [ SourceID ]
              * [ AVP ]
"""
