"""The two cores of a migration in one test reactor, over loopback: the primary core
(primary + hss roles) and the partner core (partner role), each with its store provisioned
as an operator would (TR 23.781 steps 4-6 and 9-11): alice in the primary with K/OPc, an
agreement for partner-a, outbound identities for partner-a, and inbound identities in the
partner bound to them. S-CSCFs connect to the partner core as raw peers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from twisted.internet import reactor

from gateway.applications.cx import CX, Local
from gateway.applications.hss import HssApplication
from gateway.applications.partner import PartnerApplication
from gateway.applications.primary import PrimaryApplication
from gateway.applications.revocation import RevocationWatcher
from gateway.applications.service import CxService
from gateway.applications.storage import StoreAccess
from gateway.settings import PeerSettings, Timers
from gateway.testing.diamtest import FAST, Net, route
from hss_store.allocation import AllocationPolicy
from hss_store.records import Agreement, PrimaryDatabase, Subscriber
from hss_store.store import HssStore

K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
PRIMARY, PARTNER = "primary.example", "partner.example"
PRIMARY_GW, PARTNER_GW, SCSCF = "gw.primary.example", "gw.partner.example", "scscf.partner.example"
REAL_IMPI, REAL_IMPU = "alice@primary.example", "sip:alice@primary.example"


class Cores:
    def __init__(
        self,
        net: Net,
        primary_store: HssStore,
        partner_store: HssStore,
        *,
        partners: Mapping[str, str] | None = None,  # partner gateway host -> partner_id
        primary_peers: Iterable[PeerSettings] = (),  # besides gw.partner.example
        scscfs: Iterable[str] = (SCSCF,),
        timers: Timers = FAST,
        store_deadline: float = 2.0,
    ) -> None:
        self.net = net
        self.primary_store, self.partner_store = primary_store, partner_store
        primary_store.add_subscriber(Subscriber.new(REAL_IMPI, [REAL_IMPU], K, opc=OPC))
        primary_store.add_agreement(Agreement("partner-a", "all"))
        primary_store.set_policy(AllocationPolicy("outbound", impi_pattern="out-<random>@primary.example",
                                                  impu_pattern="sip:out-<random>@primary.example"))
        partner_store.set_policy(AllocationPolicy("inbound", impi_pattern="mig-<random>@partner.example",
                                                  impu_pattern="sip:mig-<random>@partner.example"))
        self.outbound = primary_store.allocate_outbound(REAL_IMPI, REAL_IMPU, "partner-a")
        self.inbound = partner_store.allocate_inbound(
            PrimaryDatabase(PRIMARY, PRIMARY_GW), self.outbound.outbound_impi, self.outbound.outbound_impu
        )
        # the primary core: primary + hss in one process, the HSS in-process
        self.primary = net.node(PRIMARY_GW, PRIMARY, timers=timers,
                                peers=[PeerSettings(PARTNER_GW, PARTNER, connect=False), *primary_peers])
        self.access = StoreAccess(primary_store, reactor, deadline=store_deadline)
        local = Local(PRIMARY_GW, PRIMARY)
        self.hss = HssApplication(self.access, local, max_vectors=5)
        self.primary_role = PrimaryApplication(self.access, local, partners or {PARTNER_GW: "partner-a"}, hss=self.hss)
        self.primary.applications[CX] = CxService(local, self.primary, hss=self.hss, primary=self.primary_role)
        # the partner core
        self.partner = net.node(
            PARTNER_GW, PARTNER, timers=timers,
            peers=[*(PeerSettings(host, PARTNER, connect=False) for host in scscfs),
                   PeerSettings(PRIMARY_GW, PRIMARY, "127.0.0.1", net.ports[PRIMARY_GW])],
            routes=[route(PRIMARY, PRIMARY_GW)],
        )
        partner_local = Local(PARTNER_GW, PARTNER)
        self.partner_access = StoreAccess(partner_store, reactor)
        self.partner_role = PartnerApplication(self.partner_access, partner_local, self.partner.send_request)
        self.partner.applications[CX] = CxService(partner_local, self.partner, partner=self.partner_role)
        self.watcher = RevocationWatcher(self.partner_access, partner_local, self.partner.send_request,
                                         reactor, 0.05, self.partner_role.registrars)
        # what the primary receives from the partner, for the checks on the wire
        self.primary_leg: list[bytes] = []
        receive = self.primary.receive
        self.primary.receive = lambda connection, data: (self.primary_leg.append(data), receive(connection, data))[1]

    def scscf(self, host: str = SCSCF) -> Any:
        """A raw peer connected to the partner core as ``host``, after its CER/CEA."""
        return self.net.raw_peer(self.net.ports[PARTNER_GW], host=host, realm=PARTNER)

    def close(self) -> None:
        self.watcher.stop()
        self.access.close()  # the stores too (and a PostgreSQL store's threads)
        self.partner_access.close()
