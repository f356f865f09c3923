"""Kamailio 5.6 as an IMS S-CSCF (Debian's `kamailio` + `kamailio-ims-modules`), for tests.

:class:`Kamailio` writes a Kamailio configuration and the XML of its Diameter stack (cdp)
into a folder, starts ``kamailio`` in the foreground as a child process on loopback (SIP
over UDP, Diameter acceptor over TCP, both on ports picked free), reads its log (stderr)
in a thread and stops it. The S-CSCF challenges REGISTER with IMS-AKA
(`ims_auth`: MAR to its HSS), re-synchronises on AUTS, and registers the user
(`ims_registrar_scscf`: SAR, the contact kept in `ims_usrloc_scscf`, RTR honoured).

Its HSS is one Diameter peer (``hss_host``, realm ``realm``) that connects to Kamailio's
acceptor: cdp dials a peer by resolving its FQDN, and a gateway's Diameter identity need
not resolve. A second REGISTER route challenges with SIP Digest (``MD5``) when the request
URI's user part is ``digest`` (``sip:digest@REALM``): a UE cannot otherwise make Kamailio
ask for a Digest scheme.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
PROGRAM = "/usr/sbin/kamailio"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS has just handed out on 127.0.0.1 (for programs that take no port 0)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


CFG = r"""#!KAMAILIO
debug=2
log_stderror=yes
children=4
auto_aliases=no
listen=udp:127.0.0.1:{sip_port}
alias="{domain}"
mpath="{modules}"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "ctl.so"
loadmodule "kex.so"
loadmodule "presence.so"
loadmodule "rr.so"
loadmodule "ims_dialog.so"
loadmodule "cdp.so"
loadmodule "cdp_avp.so"
loadmodule "ims_usrloc_scscf.so"
loadmodule "ims_registrar_scscf.so"
loadmodule "ims_auth.so"

modparam("ctl", "binrpc", "unix:{folder}/kamailio_ctl")
modparam("ims_dialog", "dlg_flag", 4)
modparam("cdp", "config_file", "{folder}/diameter.xml")
modparam("ims_usrloc_scscf", "enable_debug_file", 0)
modparam("ims_usrloc_scscf", "timer_interval", 1)
modparam("ims_usrloc_scscf", "user_data_xsd", "")
modparam("ims_registrar_scscf", "scscf_name", "{server_name}")
modparam("ims_registrar_scscf", "cxdx_dest_realm", "{realm}")
modparam("ims_registrar_scscf", "default_expires", 600)
modparam("ims_registrar_scscf", "min_expires", 60)
modparam("ims_registrar_scscf", "max_expires", 3600)
modparam("ims_auth", "name", "{server_name}")
modparam("ims_auth", "registration_default_algorithm", "AKAv1-MD5")
modparam("ims_auth", "cxdx_dest_realm", "{realm}")
modparam("ims_auth", "av_check_only_impu", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!is_method("REGISTER")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    # a retransmission of a REGISTER in progress: the last reply again, no second MAR
    if (t_check_trans()) {{
        exit;
    }}
    xlog("L_INFO", "REGISTER from $fu call-id $ci\n");
    if ($rU == "digest") {{
        route(DIGEST);
        exit;
    }}
    if (!ims_www_authenticate("{realm}")) {{
        if ($? == -2) {{
            xlog("L_ERR", "authentication failed for $fu\n");
            sl_send_reply("403", "Authentication Failed");
            exit;
        }}
        if ($? == -9) {{
            xlog("L_INFO", "re-synchronisation for $fu\n");
            ims_www_resync_auth("REG_RESYNC_REPLY", "{realm}");
            exit;
        }}
        xlog("L_INFO", "challenging $fu\n");
        ims_www_challenge("REG_MAR_REPLY", "{realm}");
        exit;
    }}
    xlog("L_INFO", "authenticated $fu, SAR\n");
    t_newtran();
    save("REG_SAR_REPLY", "location", 0, 0);
    exit;
}}

route[DIGEST] {{
    if (!ims_www_authenticate("{realm}")) {{
        xlog("L_INFO", "challenging $fu with MD5\n");
        ims_www_challenge("REG_MAR_REPLY", "{realm}", "MD5");
        exit;
    }}
    t_newtran();
    save("REG_SAR_REPLY", "location", 0, 0);
    exit;
}}

route[REG_MAR_REPLY] {{
    xlog("L_INFO", "MAA for $fu: maa_return_code $avp(s:maa_return_code)\n");
    switch ($avp(s:maa_return_code)) {{
        case 1:
            exit;
        case -1:
            exit;
        default:
            t_reply("500", "MAR failed");
            exit;
    }}
}}

route[REG_RESYNC_REPLY] {{
    xlog("L_INFO", "re-sync MAA for $fu: maa_return_code $avp(s:maa_return_code)\n");
    if ($avp(s:maa_return_code) == 1) {{
        ims_www_challenge("REG_MAR_REPLY", "{realm}");
        exit;
    }}
    t_reply("500", "Re-synchronisation failed");
    exit;
}}

route[REG_SAR_REPLY] {{
    xlog("L_INFO", "SAA for $fu: saa_return_code $avp(s:saa_return_code)\n");
    exit;
}}
"""

DIAMETER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<DiameterPeer FQDN="{identity}" Realm="{realm}" Vendor_Id="10415" Product_Name="CDiameterPeer"
    AcceptUnknownPeers="0" DropUnknownOnDisconnect="1" Tc="{tc}" Workers="4" QueueLength="64"
    TransactionTimeout="5" SessionsHashSize="128" DefaultAuthSessionTimeout="3600" MaxAuthSessionTimeout="3600">
  <Peer FQDN="{hss_host}" Realm="{realm}" port="{hss_port}"/>
  <Acceptor port="{diameter_port}" bind="127.0.0.1"/>
  <Auth id="16777216" vendor="10415"/>
  <DefaultRoute FQDN="{hss_host}" metric="10"/>
</DiameterPeer>
"""


class Kamailio:
    """A Kamailio S-CSCF in ``folder``: SIP on udp 127.0.0.1:``sip_port``, its Diameter
    identity ``identity`` accepting its HSS (``hss_host``) on tcp 127.0.0.1:``diameter_port``."""

    def __init__(self, folder: Path, *, identity: str = "scscf.partner.example", realm: str = "partner.example",
                 hss_host: str = "gw.partner.example", hss_port: int = 3868, tc: int = 5,
                 program: str = PROGRAM) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.identity, self.realm, self.hss_host = identity, realm, hss_host
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.diameter_port = free_port()
        self.server_name = f"sip:{identity}:{self.sip_port}"
        (self.folder / "kamailio.cfg").write_text(CFG.format(
            sip_port=self.sip_port, domain=realm, realm=realm, modules=MODULES, folder=self.folder,
            server_name=self.server_name,
        ))
        (self.folder / "diameter.xml").write_text(DIAMETER_XML.format(
            identity=identity, realm=realm, hss_host=hss_host, hss_port=hss_port, tc=tc,
            diameter_port=self.diameter_port,
        ))
        self.program = program
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.program, "-DD", "-E", "-w", str(self.folder), "-f", str(self.folder / "kamailio.cfg"), "-Y", str(self.folder),
             "-P", str(self.folder / "kamailio.pid"), "-L", str(MODULES), "-m", "64", "-M", "16"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            errors="replace", start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            self.lines.append(line)

    def find(self, pattern: str) -> re.Match[str] | None:
        for line in list(self.lines):
            match = re.search(pattern, line)
            if match:
                return match
        return None

    def count(self, pattern: str) -> int:
        return sum(1 for line in list(self.lines) if re.search(pattern, line))

    def stop(self) -> None:
        """SIGTERM to its process group (Kamailio forks its workers), SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        else:  # the workers of a main process that died
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
