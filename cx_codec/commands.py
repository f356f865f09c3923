"""Typed constructors for the commands of RFC 6733 and TS 29.229, and Session-Id.

    mar = MultimediaAuthRequest(
        session_id=new_session_id("scscf.partner.example"),
        origin_host="scscf.partner.example", origin_realm="partner.example",
        destination_realm="partner.example",
        user_name="mig-1@partner.example", public_identity="sip:mig-1@partner.example",
        sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"},
        sip_number_auth_items=1, server_name="sip:scscf.partner.example:6060",
    )

Cx commands fill in what TS 29.229 fixes for every Cx message unless given:
Vendor-Specific-Application-Id (10415, Cx) and Auth-Session-State NO_STATE_MAINTAINED
(TS 29.229 §6.1: "Auth-Session-State ... NO_STATE_MAINTAINED").
"""

from __future__ import annotations

from cx_codec.build import new_message
from cx_codec.build import (
    new_session_id as new_session_id,  # (it lived here first; callers import it from here)
)
from cx_codec.dictionary import APPLICATION_CX, DEFAULT_DICTIONARY, VENDOR_3GPP, Dictionary
from cx_codec.grammar import Grammar
from cx_codec.message import Message

CX_APPLICATION = {"vendor_id": VENDOR_3GPP, "auth_application_id": APPLICATION_CX}
NO_STATE_MAINTAINED = 1


class CommandType:
    """A command of the dictionary, callable to build one with named fields."""

    def __init__(self, name: str, dictionary: Dictionary = DEFAULT_DICTIONARY) -> None:
        self.name = name
        self.dictionary = dictionary

    @property
    def grammar(self) -> Grammar:
        return self.dictionary.command(self.name)

    def __call__(self, *, hop_by_hop: int = 0, end_to_end: int = 0, **fields: object) -> Message:
        grammar = self.grammar
        if grammar.application_id == APPLICATION_CX:
            fields.setdefault("vendor_specific_application_id", CX_APPLICATION)
            fields.setdefault("auth_session_state", NO_STATE_MAINTAINED)
        return new_message(
            self.name, hop_by_hop=hop_by_hop, end_to_end=end_to_end, dictionary=self.dictionary, **fields
        )

    def matches(self, message: Message) -> bool:
        grammar = self.grammar
        return (
            message.command_code == grammar.code
            and message.is_request == grammar.request
            and message.application_id == grammar.application_id
        )

    def __repr__(self) -> str:
        return f"<CommandType {self.name}>"


# RFC 6733 §5
CapabilitiesExchangeRequest = CommandType("Capabilities-Exchange-Request")
CapabilitiesExchangeAnswer = CommandType("Capabilities-Exchange-Answer")
DeviceWatchdogRequest = CommandType("Device-Watchdog-Request")
DeviceWatchdogAnswer = CommandType("Device-Watchdog-Answer")
DisconnectPeerRequest = CommandType("Disconnect-Peer-Request")
DisconnectPeerAnswer = CommandType("Disconnect-Peer-Answer")
# TS 29.229 §6.1
UserAuthorizationRequest = CommandType("User-Authorization-Request")
UserAuthorizationAnswer = CommandType("User-Authorization-Answer")
ServerAssignmentRequest = CommandType("Server-Assignment-Request")
ServerAssignmentAnswer = CommandType("Server-Assignment-Answer")
LocationInfoRequest = CommandType("Location-Info-Request")
LocationInfoAnswer = CommandType("Location-Info-Answer")
MultimediaAuthRequest = CommandType("Multimedia-Auth-Request")
MultimediaAuthAnswer = CommandType("Multimedia-Auth-Answer")
RegistrationTerminationRequest = CommandType("Registration-Termination-Request")
RegistrationTerminationAnswer = CommandType("Registration-Termination-Answer")
PushProfileRequest = CommandType("Push-Profile-Request")
PushProfileAnswer = CommandType("Push-Profile-Answer")

