"""The primary CM's access request to a partner's CM (TR 23.781 steps 7, 8 and 12) over HTTPS.

The partner's CM is the partner's provisioning API (docs/openapi.json): the access request
is ``POST /v1/bindings/inbound`` with our SIP database's identifier and the outbound
identities; the partner authenticates us by our bearer token (and, when configured, our
client certificate: mutual TLS), allocates inbound identities of its own domain bound to
ours (steps 9-11) and answers with the binding (step 12). A withdrawal is
``POST /v1/bindings/{inbound_impi}/revoke?direction=inbound``.

Written on the standard library's ``urllib.request`` and ``ssl``: two blocking requests
per migration need no HTTP client library, and the CLI stays free of a reactor. Every
failure becomes one MigrationError line naming the partner, the URL and the fix.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from gateway.migration.directory import DirectoryError, PartnerSystem
from gateway.migration.flow import AccessGrant, AccessRequest, Exit, Identities, MigrationError

MAX_ANSWER_BYTES = 1 << 16  # a binding is a few hundred bytes; refuse to read a flood


class HttpsPartnerAccess:
    """``PartnerAccess`` over the partners' provisioning APIs."""

    def request_access(self, partner: PartnerSystem, request: AccessRequest) -> AccessGrant:
        body = {
            "primary_realm": request.primary_realm, "primary_host": request.primary_host,
            "primary_impi": request.outbound.impi, "primary_impu": request.outbound.impu,
        }
        answer = self._call(partner, "POST", "/v1/bindings/inbound", body, step="7")
        return self._grant(partner, request, answer)

    def withdraw(self, partner: PartnerSystem, inbound_impi: str) -> None:
        self._call(partner, "POST", f"/v1/bindings/{quote(inbound_impi, safe='@')}/revoke?direction=inbound",
                   None, step="12")

    # -------------------------------------------------------------------------------------------

    def _grant(self, partner: PartnerSystem, request: AccessRequest, answer: Any) -> AccessGrant:
        """Step 12: the answer must be an active inbound binding bound to exactly what we sent."""
        from hss_store.errors import InvalidIdentity
        from hss_store.identities import validate_impi, validate_impu

        def bad(why: str) -> MigrationError:
            return MigrationError("12", Exit.PARTNER_REFUSED, f"{partner.id}'s provisioning API at {partner.api_url} "
                                  f"answered with no usable inbound binding: {why}")

        if not isinstance(answer, dict):
            raise bad("not a JSON object")
        fields = ("inbound_impi", "inbound_impu", "primary_impi", "primary_impu", "primary_realm")
        missing = [name for name in fields if not isinstance(answer.get(name), str)]
        if missing:
            raise bad(f"{', '.join(missing)} missing")
        if (answer["primary_impi"], answer["primary_impu"], answer["primary_realm"]) != (
                request.outbound.impi, request.outbound.impu, request.primary_realm):
            raise bad(f"bound to {answer['primary_impi']} / {answer['primary_impu']} of {answer['primary_realm']}, "
                      f"not to our {request.outbound.impi} / {request.outbound.impu}")
        if answer.get("state", "active") != "active" or answer.get("revoked_at") is not None:
            raise bad(f"the binding of {answer['inbound_impi']} is {answer.get('state', 'revoked')}")
        try:
            impi, impu = validate_impi(answer["inbound_impi"]), validate_impu(answer["inbound_impu"])
        except InvalidIdentity as error:
            raise bad(str(error)) from None
        return AccessGrant(Identities(impi, impu), impi.rpartition("@")[2], partner.pcscf)

    def _call(self, partner: PartnerSystem, method: str, path: str, body: dict[str, Any] | None,
              *, step: str) -> Any:
        url = partner.api_url + path
        try:
            token = partner.token()
        except DirectoryError as error:
            raise MigrationError(step, Exit.USAGE, str(error)) from None
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"})
        where = f"{partner.id}'s provisioning API at {partner.api_url}"
        # No proxy from the environment: the interconnect is direct, and a proxy meant for
        # browsing must not see a request that carries the partner's bearer token.
        # No redirects either: following one would send the token to wherever it points.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                             urllib.request.HTTPSHandler(context=_tls_context(partner)))
        try:
            with opener.open(request, timeout=partner.timeout) as response:
                raw = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise _refused(partner, where, error, step) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, ssl.SSLError):
                raise MigrationError(step, Exit.PARTNER_REFUSED, f"{where}: {_tls_failure(partner, error.reason)}") from None
            raise MigrationError(step, Exit.PARTNER_REFUSED, f"{where} is unreachable: {_reason(error.reason)}") from None
        except TimeoutError:
            raise MigrationError(step, Exit.PARTNER_REFUSED,
                                 f"{where} did not answer within {partner.timeout:g} s; is it up?") from None
        except ssl.SSLError as error:  # TLS 1.3: a refused client certificate shows after the handshake
            raise MigrationError(step, Exit.PARTNER_REFUSED, f"{where}: {_tls_failure(partner, error)}") from None
        except OSError as error:  # a connection reset in the middle, say
            raise MigrationError(step, Exit.PARTNER_REFUSED, f"{where} failed: {_reason(error)}") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise MigrationError(step, Exit.PARTNER_REFUSED, f"{where} answered more than {MAX_ANSWER_BYTES} bytes")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise MigrationError(step, Exit.PARTNER_REFUSED, f"{where} answered something that is not JSON") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx answer is an error (HTTPError), never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _tls_context(partner: PartnerSystem) -> ssl.SSLContext | None:
    if not partner.api_url.startswith("https:"):
        return None
    try:
        context = ssl.create_default_context(cafile=str(partner.ca_file) if partner.ca_file else None)
        if partner.client_cert and partner.client_key:
            context.load_cert_chain(str(partner.client_cert), str(partner.client_key))
    except (OSError, ssl.SSLError) as error:
        raise MigrationError("7", Exit.USAGE, f"partner {partner.id}: TLS files cannot be used: {_reason(error)}; "
                             "check ca_file, client_cert and client_key") from None
    return context


def _tls_failure(partner: PartnerSystem, error: ssl.SSLError) -> str:
    """What went wrong in TLS, and the key of the partners file that fixes it."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({error.verify_message}); set ca_file to the CA that signed it"
    if "CERTIFICATE_REQUIRED" in str(error) or (
            partner.client_cert is None and isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError)):
        # TLS 1.3 (RFC 8446 §4.4.2.4): a server that requires a certificate sends an alert
        # or just closes, after the client thought the handshake done
        return (f"TLS failed ({error.reason or error}): it requires a client certificate (mutual TLS); "
                "set client_cert and client_key")
    return f"TLS failed ({error.reason or error})"


def _reason(reason: object) -> str:
    """A network failure in a few words: 'connection refused', not an errno tuple."""
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return f"its host name does not resolve ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


# HTTP status of the provisioning API -> (what it means for the access request, the fix)
REFUSALS: dict[int, tuple[str, str]] = {
    401: ("refused our bearer token", "; check token_file {token_file}: it must hold the token {partner} issued to us"),
    403: ("refused the access request", ""),
    404: ("does not know that binding", ""),
    409: ("cannot allocate inbound identities", "; {partner} must set its inbound allocation policy"),
    400: ("found our request invalid", ""),
    503: ("cannot reach its SIP database", "; try again once {partner} has it back"),
}


def _refused(partner: PartnerSystem, where: str, error: urllib.error.HTTPError, step: str) -> MigrationError:
    try:
        detail = json.loads(error.read(MAX_ANSWER_BYTES))["error"]
        status = f"HTTP {error.code} {detail['code']}: {detail['message']}"
    except (ValueError, KeyError, TypeError, OSError):
        status = f"HTTP {error.code} {error.reason or ''}".rstrip()
    what, fix = REFUSALS.get(error.code, ("failed", ""))
    step = "8" if error.code in (401, 403) else "12" if step == "7" else step
    fix = fix.format(partner=partner.id, token_file=partner.token_file)
    return MigrationError(step, Exit.PARTNER_REFUSED, f"{where} {what} ({status}){fix}")
