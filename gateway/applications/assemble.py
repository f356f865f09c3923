"""The Cx roles a configuration asks for, built and registered on a node (`cxgw gateway`)."""

from __future__ import annotations

from typing import Any

from gateway.applications.caches import PrimaryWatch
from gateway.applications.cx import CX, Local
from gateway.applications.hss import HssApplication
from gateway.applications.partner import PartnerApplication
from gateway.applications.primary import PrimaryApplication
from gateway.applications.revocation import RevocationWatcher
from gateway.applications.service import CxService
from gateway.applications.storage import StoreAccess
from gateway.applications.translation import Destination
from gateway.config import GatewayConfig
from hss_store import is_postgres_url, open_store


class Roles:
    """What a node's Cx roles hold that outlives a request: the store, the watches of its
    change logs (the partner's revocations, the primary's caches). ``start`` once the node
    runs, ``stop`` at shutdown."""

    def __init__(self, store: StoreAccess, watchers: list[RevocationWatcher | PrimaryWatch]) -> None:
        self.store, self.watchers = store, watchers

    def start(self) -> None:
        for watcher in self.watchers:
            watcher.start()

    def stop(self) -> None:
        for watcher in self.watchers:
            watcher.stop()
        self.store.close()


def install_roles(config: GatewayConfig, node: Any, reactor: Any) -> Roles | None:
    """Open the store and register the roles of ``config.node.roles`` as the node's Cx
    application; None for a plain relay."""
    if config.store is None:
        return None
    settings = config.store
    options: dict[str, Any] = {}
    if is_postgres_url(settings.target):  # a connection per calling thread, each call bounded
        options = {"timeout": settings.deadline, "max_connections": settings.threads}
    store = StoreAccess(open_store(settings.target, **options), reactor, settings.deadline, settings.threads)
    local = Local(config.node.origin_host, config.node.origin_realm)
    hss = HssApplication(store, local, config.hss.max_vectors) if config.hss is not None else None
    partner = primary = None
    watchers: list[RevocationWatcher | PrimaryWatch] = []
    if config.partner is not None:
        partner = PartnerApplication(store, local, node.send_request, hide_topology=config.partner.hide_topology,
                                     new_end_to_end=node.new_end_to_end)
        partner.bindings.capacity = config.partner.bindings_in_memory
        if node.recorder is not None:  # [capture]: the translated MAR and its original named in the file
            partner.annotate = node.recorder.annotations()
        watchers.append(RevocationWatcher(
            store, local, node.send_request, reactor, config.partner.revocation_poll, partner.registrars,
            partner.bindings,
        ))
    if config.primary is not None:
        settings = config.primary
        destination = Destination(settings.hss_realm, settings.hss_host) if settings.hss_realm else None
        primary = PrimaryApplication(
            store, local, {peer.host: peer.partner_id for peer in settings.partners},
            hss=hss, send=node.send_request, hss_destination=destination, hide_topology=settings.hide_topology,
        )
        primary.bindings.capacity = settings.bindings_in_memory
        if store.store.in_process:  # (PostgreSQL: read per MAR, off the reactor)
            watchers.append(PrimaryWatch(store.store, reactor, settings.revocation_poll, primary.bindings,
                                         primary.agreements, store))
    node.applications[CX] = CxService(local, node, hss=hss, partner=partner, primary=primary)
    return Roles(store, watchers)
