"""The server's lifecycle: open the database, migrate, listen, and shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

from aiohttp import web

from homeserver.config import Config, ListenerConfig
from homeserver.errors import StartupError
from homeserver.http.app import build_app
from homeserver.services.account_data import AccountData
from homeserver.services.accounts import Accounts
from homeserver.services.admin_registration import AdminRegistration
from homeserver.services.dehydrated_devices import DehydratedDevices
from homeserver.services.directory import Directory
from homeserver.services.e2ee import EndToEnd
from homeserver.services.media import Media
from homeserver.services.push import Push
from homeserver.services.push_gateway import PushGateway
from homeserver.services.url_preview import UrlPreviews
from homeserver.services.ephemeral import Receipts, Typing
from homeserver.services.events import EventPipeline, EventStore, Persisted
from homeserver.federation.client import FederationClient
from homeserver.federation.keyring import Keyring
from homeserver.services.federation_auth import RequestAuth
from homeserver.services.federation_edus import FederationEdus
from homeserver.services.federation_events import FederationEvents
from homeserver.services.federation_membership import FederationMembership
from homeserver.services.federation_sender import FederationSender
from homeserver.services.federation_transactions import FederationTransactions
from homeserver.services.notifier import Notifier
from homeserver.services.presence import Presence
from homeserver.services.rooms import Rooms
from homeserver.services.legacy_sync import LegacySync
from homeserver.services.sync import Sync
from homeserver.services.profiles import Profiles
from homeserver.services.server_keys import ServerKeys
from homeserver.services.sessions import Sessions
from homeserver.services.uia import UserInteractiveAuth
from homeserver.signing_key_file import load_or_create_signing_key
from homeserver.storage.database import Database
from homeserver.storage.migrations import apply_migrations

logger = logging.getLogger(__name__)

# How long in-flight requests may run on after SIGTERM before they are cut.
SHUTDOWN_TIMEOUT_S = 10.0


def _ssl_context(listener: ListenerConfig) -> ssl.SSLContext | None:
    if not listener.uses_tls:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(listener.tls_certificate_path), str(listener.tls_private_key_path))
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"listeners: cannot load TLS certificate {listener.tls_certificate_path}: {exc}"
        ) from None
    return ctx


class HomeServer:
    """Everything a running server owns; the HTTP layer reaches services through it."""

    def __init__(self, config: Config, database: Database, server_keys: ServerKeys) -> None:
        self.config = config
        self.database = database
        self.server_keys = server_keys
        self.sessions = Sessions(config, database)
        self.uia = UserInteractiveAuth(database)
        self.accounts = Accounts(config, database, self.sessions, self.uia)
        self.admin_registration = AdminRegistration(config.registration_shared_secret, self.accounts)
        self.profiles = Profiles(config, database)
        self.notifier = Notifier()
        self.account_data = AccountData(database, self.notifier)
        self.event_store = EventStore(database)
        self.pipeline = EventPipeline(
            database, self.event_store, server_keys, self._before_visible, self._after_persist
        )
        self.rooms = Rooms(config, database, self.event_store, self.pipeline, self.account_data)
        self.accounts.on_deactivate = self.rooms.leave_all
        self.profiles.on_change = self.rooms.propagate_profile
        self.typing = Typing(self.notifier, self._joined_members)
        self.receipts = Receipts(database, self.event_store, self.notifier, self._joined_members)
        self.presence = Presence(config.presence.enabled, database, self.notifier)
        self.media = Media(config, database)
        self.url_previews = UrlPreviews(config, self.media)
        self.push_gateway = PushGateway(database, verify_tls=not config.use_insecure_ssl_client_just_for_testing_do_not_use)
        self.push = Push(config, database, self.event_store, self.account_data, self.push_gateway)
        self.receipts.on_read = self.push_gateway.update_badge
        self.federation_client = FederationClient(config, server_keys.signing_key)
        self.directory = Directory(config, database, self.event_store, self.federation_client)
        self.rooms.directory = self.directory
        self.directory.on_alias_deleted = self.rooms.alias_deleted
        self.e2ee = EndToEnd(config, database, self.notifier, self.accounts.reauthenticate)
        self.accounts.on_devices_deleted = self.e2ee.device_deleted
        self.accounts.on_device_changed = self.e2ee.device_changed
        self.dehydrated_devices = DehydratedDevices(database, self.e2ee)
        self.sync = Sync(database, self.event_store, self.pipeline, self.notifier, self.typing, self.receipts,
                         self.rooms, self.presence, self.push, self.e2ee)
        self.keyring = Keyring(database, self.federation_client, server_keys.server_name, server_keys.key_id,
                               server_keys.signing_key.verify_key, server_keys.key_document)
        self.federation_sender = FederationSender(config, database, self.federation_client)
        self.pipeline.on_queued = self.federation_sender.wake
        self.federation_auth = RequestAuth(config.server_name, self.keyring, self.federation_client,
                                           self.federation_sender.mark_alive)
        self.federation_events = FederationEvents(config.server_name, database, self.event_store, self.pipeline,
                                                  self.keyring, self.federation_client)
        self.federation_membership = FederationMembership(
            server_keys, database, self.event_store, self.pipeline, self.federation_events, self.federation_client,
            self.notifier,
        )
        self.federation_membership.restricted_authoriser = self.rooms.restricted_join_authoriser
        self.rooms.federation = self.federation_membership
        self.federation_transactions = FederationTransactions(database, self.event_store, self.federation_events)
        self.e2ee.federation_client = self.federation_client
        self.e2ee.federation_sender = self.federation_sender
        self.profiles.federation_client = self.federation_client
        self.media.federation_client = self.federation_client
        self.federation_edus = FederationEdus(
            config.server_name, database, self.event_store, self.federation_sender, self.federation_events,
            self.typing, self.receipts, self.presence, self.e2ee,
        )
        self.federation_edus.install(self.federation_transactions)
        self.legacy_sync = LegacySync(self.sync, self.rooms, self.directory)
        self._runners: list[web.AppRunner] = []

    async def _joined_members(self, room_id: str) -> list[str]:
        from homeserver.storage import events as event_store

        room = await self.event_store.room(room_id)
        if room is None:
            return []
        return await event_store.members_of(self.database.pool, room.room_nid, ("join",))

    async def _after_persist(self, persisted: Persisted) -> None:
        """Wake the syncs of everyone the event concerns."""
        from homeserver.storage import events as event_store

        users = set(await event_store.members_of(self.database.pool, persisted.room.room_nid, ("join",)))
        if persisted.event.type == "m.room.member" and persisted.event.state_key:
            users.add(persisted.event.state_key)
            if persisted.event.membership in ("leave", "ban"):
                await self.e2ee.room_left(persisted.room.room_nid)
        self.notifier.notify(users)

    async def _before_visible(self, persisted: Persisted) -> None:
        """Notification counts are written before sync can see the event."""
        await self.push.evaluate(persisted)

    @classmethod
    async def create(cls, config: Config) -> "HomeServer":
        """Open the database, bring its schema up to date and start the services (no listeners yet)."""
        signing_key = load_or_create_signing_key(config.signing_key_file)
        database = await Database.open(config)
        try:
            await apply_migrations(database.pool)
        except BaseException:
            await database.close()
            raise
        hs = cls(config, database, ServerKeys(config.server_name, signing_key))
        await hs.sessions.start()
        await hs.federation_sender.start()
        return hs

    async def start_listeners(self) -> None:
        for listener in self.config.listeners:
            runner = web.AppRunner(
                build_app(self, listener),
                access_log=None,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                handle_signals=False,
            )
            await runner.setup()
            self._runners.append(runner)
            ctx = _ssl_context(listener)
            for address in listener.bind_addresses:
                site = web.TCPSite(runner, address, listener.port, ssl_context=ctx)
                try:
                    await site.start()
                except OSError as exc:
                    raise StartupError(
                        f"listeners: cannot listen on {address}:{listener.port}: {exc.strerror}"
                    ) from None
            logger.info(
                "listening on %s port %d (%s)%s",
                ", ".join(listener.bind_addresses),
                listener.port,
                ", ".join(sorted(listener.resource_names)),
                " with TLS" if ctx else "",
            )

    @property
    def bound_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listening socket; tests bind port 0 and read this."""
        return [addr[:2] for runner in self._runners for addr in runner.addresses]

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, then close the database."""
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        await self.federation_sender.stop()
        await self.e2ee.stop()
        await self.federation_client.stop()
        await self.push_gateway.stop()
        await self.url_previews.stop()
        await self.sessions.stop()
        await self.database.close()


async def run(config: Config) -> None:
    """Run until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    hs = await HomeServer.create(config)
    try:
        await hs.start_listeners()
        logger.info("server %s ready", config.server_name)
        await stop.wait()
        logger.info("shutting down")
    finally:
        await hs.stop()
    logger.info("stopped")
