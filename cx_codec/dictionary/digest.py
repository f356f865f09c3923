"""RFC 4590 Digest AVPs (vendor 0), carried inside Cx SIP-Digest-Authenticate (TS 29.229 §6.3.36)."""

VENDOR = 0

# code, name, type, flags (RFC 4590 §11: M bit MUST be set)
AVPS = [
    (103, "Digest-Response", "OctetString", "M"),
    (104, "Digest-Realm", "OctetString", "M"),
    (105, "Digest-Nonce", "OctetString", "M"),
    (106, "Digest-Response-Auth", "OctetString", "M"),
    (107, "Digest-Nextnonce", "OctetString", "M"),
    (108, "Digest-Method", "OctetString", "M"),
    (109, "Digest-URI", "OctetString", "M"),
    (110, "Digest-Qop", "OctetString", "M"),
    (111, "Digest-Algorithm", "OctetString", "M"),
    (112, "Digest-Entity-Body-Hash", "OctetString", "M"),
    (113, "Digest-CNonce", "OctetString", "M"),
    (114, "Digest-Nonce-Count", "OctetString", "M"),
    (115, "Digest-Username", "OctetString", "M"),
    (116, "Digest-Opaque", "OctetString", "M"),
    (117, "Digest-Auth-Param", "OctetString", "M"),
    (118, "Digest-AKA-Auts", "OctetString", "M"),
    (119, "Digest-Domain", "OctetString", "M"),
    (120, "Digest-Stale", "OctetString", "M"),
    (121, "Digest-HA1", "OctetString", "M"),
]
