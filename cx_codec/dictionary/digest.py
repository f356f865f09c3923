"""Digest AVPs (vendor 0), carried inside Cx SIP-Digest-Authenticate (TS 29.229 §6.3.36).

The codes are the RADIUS attribute numbers of RFC 4590 §3.4 (obsoleted by RFC 5090,
same numbers), used as Diameter AVPs by RFC 4740 and TS 29.229 §6.3.37-6.3.41. RFC 4590
attributes are RADIUS "String"/"Text"; TS 29.229 table 6.3.1 gives the Diameter form of
the four it uses (Digest-Realm, -Algorithm, -QoP, -HA1) as UTF8String with M MUST and V
MUST NOT. Wireshark's dictionary.xml, python-diameter and the Erlang TS 29.229
dictionary agree (UTF8String for all of 103-121); earlier drafts of this module said
OctetString, which decodes the same bytes but hands out bytes instead of text.
"""

VENDOR = 0

# code, name, type, flags (M MUST be set: TS 29.229 table 6.3.1, RFC 4740 §9.x)
AVPS = [
    (103, "Digest-Response", "UTF8String", "M"),
    (104, "Digest-Realm", "UTF8String", "M"),  # TS 29.229 §6.3.37
    (105, "Digest-Nonce", "UTF8String", "M"),
    (106, "Digest-Response-Auth", "UTF8String", "M"),
    (107, "Digest-Nextnonce", "UTF8String", "M"),
    (108, "Digest-Method", "UTF8String", "M"),
    (109, "Digest-URI", "UTF8String", "M"),
    (110, "Digest-Qop", "UTF8String", "M"),  # TS 29.229 §6.3.40 ("Digest-QoP")
    (111, "Digest-Algorithm", "UTF8String", "M"),  # TS 29.229 §6.3.39
    (112, "Digest-Entity-Body-Hash", "UTF8String", "M"),
    (113, "Digest-CNonce", "UTF8String", "M"),
    (114, "Digest-Nonce-Count", "UTF8String", "M"),
    (115, "Digest-Username", "UTF8String", "M"),
    (116, "Digest-Opaque", "UTF8String", "M"),
    (117, "Digest-Auth-Param", "UTF8String", "M"),
    (118, "Digest-AKA-Auts", "UTF8String", "M"),
    (119, "Digest-Domain", "UTF8String", "M"),
    (120, "Digest-Stale", "UTF8String", "M"),
    (121, "Digest-HA1", "UTF8String", "M"),  # TS 29.229 §6.3.41
]
