"""The server's configuration: Synapse's key names, parsed once into frozen objects.

Relative paths are taken relative to the working directory, as Synapse does.
`config.example.yaml` documents every key accepted here with its default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from homeserver.config_schema import ConfigError, from_mapping
from homeserver.core.ids import is_valid_server_name
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS

ResourceName = Literal["client", "federation", "keys", "media", "health"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


@dataclass(frozen=True)
class ListenerResource:
    """One `resources` entry: Synapse's `{names: [...], compress: ...}`, or a bare name."""

    names: tuple[ResourceName, ...]
    compress: bool = False

    @staticmethod
    def coerce_config(value: Any) -> Any:
        return {"names": [value]} if isinstance(value, str) else value


@dataclass(frozen=True)
class ListenerConfig:
    """An HTTP listener. Plain HTTP for nginx on loopback, or direct TLS."""

    port: int
    bind_addresses: tuple[str, ...] = ("127.0.0.1",)
    type: Literal["http"] = "http"
    tls: bool = False
    tls_certificate_path: Path | None = None
    tls_private_key_path: Path | None = None
    x_forwarded: bool = False
    resources: tuple[ListenerResource, ...] = (ListenerResource(("client", "federation")),)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: must be between 0 and 65535, got {self.port}")
        if (self.tls_certificate_path is None) != (self.tls_private_key_path is None):
            raise ValueError("tls_certificate_path and tls_private_key_path must be given together")
        if self.tls and self.tls_certificate_path is None:
            raise ValueError("tls: true needs tls_certificate_path and tls_private_key_path")
        if not self.bind_addresses:
            raise ValueError("bind_addresses: must name at least one address")

    @property
    def resource_names(self) -> frozenset[str]:
        return frozenset(name for res in self.resources for name in res.names)

    @property
    def uses_tls(self) -> bool:
        return self.tls_certificate_path is not None


@dataclass(frozen=True)
class DatabaseArgs:
    """Synapse's `database.args`: connection fields and the pool bounds."""

    user: str | None = None
    password: str | None = None
    database: str | None = None
    dbname: str | None = None
    host: str | None = None
    port: int | None = None
    cp_min: int = 1
    cp_max: int = 10

    def __post_init__(self) -> None:
        if self.cp_min < 1 or self.cp_max < self.cp_min:
            raise ValueError("args.cp_min must be at least 1 and no more than args.cp_max")


@dataclass(frozen=True)
class DatabaseConfig:
    """Which PostgreSQL to use. No `dsn` and no connection args: the embedded one."""

    name: Literal["psycopg2", "postgresql"] = "psycopg2"
    dsn: str | None = None
    args: DatabaseArgs = DatabaseArgs()

    @property
    def embedded(self) -> bool:
        a = self.args
        return self.dsn is None and a.host is None and a.database is None and a.dbname is None

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.create_pool` (without the pool bounds)."""
        a = self.args
        kwargs: dict[str, Any] = {}
        if self.dsn is not None:
            kwargs["dsn"] = self.dsn
        for key, value in (
            ("user", a.user),
            ("password", a.password),
            ("database", a.database or a.dbname),
            ("host", a.host),
            ("port", a.port),
        ):
            if value is not None:
                kwargs[key] = value
        return kwargs


_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
                   "y": 31_536_000_000}


def parse_duration(value: int | str, key: str) -> int:
    """Synapse's durations: milliseconds as an integer, or a string like `5m`, `1h`, `30d`."""
    if isinstance(value, int):
        return value
    for unit in ("ms", "s", "m", "h", "d", "w", "y"):
        number = value[: -len(unit)]
        if value.endswith(unit) and number.isdigit():
            return int(number) * _DURATION_UNITS[unit]
    if value.isdigit():
        return int(value)
    raise ValueError(f"{key}: {value!r} is not a duration (milliseconds, or a number with ms, s, m, h, d, w, y)")


_SIZE_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(value: int | str, key: str) -> int:
    """Synapse's sizes: bytes as an integer, or a string like `50M`, `512K`, `1G`."""
    if isinstance(value, int):
        return value
    number, unit = value[:-1], value[-1:].upper()
    if unit in _SIZE_UNITS and number.isdigit():
        return int(number) * _SIZE_UNITS[unit]
    if value.isdigit():
        return int(value)
    raise ValueError(f"{key}: {value!r} is not a size (bytes, or a number with K, M or G)")


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst_count` actions at once, refilled at `per_second`."""

    per_second: float
    burst_count: float

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst_count <= 0:
            raise ValueError("per_second and burst_count must be positive")


@dataclass(frozen=True)
class LoginRateLimits:
    """Synapse's `rc_login`: per client address, per account, and per account for failures."""

    address: RateLimit = RateLimit(0.003, 5)
    account: RateLimit = RateLimit(0.003, 5)
    failed_attempts: RateLimit = RateLimit(0.17, 3)


@dataclass(frozen=True)
class PresenceConfig:
    """Synapse's `presence` section."""

    enabled: bool = True


@dataclass(frozen=True)
class UserDirectoryConfig:
    """Synapse's `user_directory` section."""

    enabled: bool = True
    search_all_users: bool = False


@dataclass(frozen=True)
class PublicationRule:
    """One of Synapse's `room_list_publication_rules`: glob patterns and an action."""

    action: Literal["allow", "deny"]
    user_id: str = "*"
    alias: str = "*"
    room_id: str = "*"


def _default_publication_rules() -> tuple[PublicationRule, ...]:
    return (PublicationRule("allow"),)


# Addresses URL previews and federation never reach unless whitelisted: private, loopback, link-local, shared,
# documentation, multicast and other special-purpose ranges.
DEFAULT_PREVIEW_BLACKLIST = (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
    "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4", "0.0.0.0/8", "::1/128", "::/128", "fe80::/10", "fc00::/7", "2001:db8::/32",
    "ff00::/8", "fec0::/10", "64:ff9b::/96", "2002::/16",
)


@dataclass(frozen=True)
class TrustedKeyServer:
    """One of Synapse's `trusted_key_servers`: a notary, optionally with its keys pinned."""

    server_name: str
    verify_keys: dict[str, str] = field(default_factory=dict)


def _default_key_servers() -> tuple[TrustedKeyServer, ...]:
    return (TrustedKeyServer("matrix.org"),)


@dataclass(frozen=True)
class FederationConfig:
    """Synapse's `federation` section: the backoff bounds for unreachable servers."""

    client_timeout: int | str = "60s"
    destination_min_retry_interval: int | str = "10m"
    destination_retry_multiplier: float = 2.0
    destination_max_retry_interval: int | str = "1w"

    def __post_init__(self) -> None:
        for key in ("client_timeout", "destination_min_retry_interval", "destination_max_retry_interval"):
            object.__setattr__(self, key, parse_duration(getattr(self, key), f"federation.{key}"))
        if self.destination_retry_multiplier < 1:
            raise ValueError("federation.destination_retry_multiplier: must be at least 1")


def _default_listeners() -> tuple[ListenerConfig, ...]:
    return (ListenerConfig(port=8008, x_forwarded=True),)


@dataclass(frozen=True)
class Config:
    """Everything the server reads from its YAML file."""

    server_name: str = "localhost"
    public_baseurl: str | None = None
    listeners: tuple[ListenerConfig, ...] = field(default_factory=_default_listeners)
    database: DatabaseConfig = DatabaseConfig()
    data_dir: Path = Path("data")
    signing_key_path: Path | None = None
    log_level: LogLevel = "INFO"
    serve_client_wellknown: bool = False
    serve_server_wellknown: bool = False
    enable_registration: bool = False
    enable_registration_without_verification: bool = False
    allow_guest_access: bool = False
    registration_shared_secret: str | None = None
    registration_requires_token: bool = False
    bcrypt_rounds: int = 12
    refreshable_access_token_lifetime: int | str = "5m"
    refresh_token_lifetime: int | str | None = None
    rc_login: LoginRateLimits = LoginRateLimits()
    rc_registration: RateLimit = RateLimit(0.17, 3)
    rc_message: RateLimit = RateLimit(0.2, 10)
    rc_exempt_users: tuple[str, ...] = ()
    presence: PresenceConfig = PresenceConfig()
    media_store_path: Path | None = None
    max_upload_size: int | str = "50M"
    enable_authenticated_media: bool = True
    url_preview_enabled: bool = False
    url_preview_ip_range_blacklist: tuple[str, ...] = DEFAULT_PREVIEW_BLACKLIST
    url_preview_ip_range_whitelist: tuple[str, ...] = ()
    max_spider_size: int | str = "10M"
    room_list_publication_rules: tuple[PublicationRule, ...] = field(default_factory=_default_publication_rules)
    user_directory: UserDirectoryConfig = UserDirectoryConfig()
    turn_uris: tuple[str, ...] = ()
    turn_shared_secret: str | None = None
    turn_user_lifetime: int | str = "1h"
    extra_well_known_client_content: dict[str, Any] = field(default_factory=dict)
    default_room_version: str = "12"
    federation_domain_whitelist: tuple[str, ...] | None = None
    federation_verify_certificates: bool = True
    federation_custom_ca_list: tuple[Path, ...] = ()
    ip_range_blacklist: tuple[str, ...] = DEFAULT_PREVIEW_BLACKLIST
    ip_range_whitelist: tuple[str, ...] = ()
    trusted_key_servers: tuple[TrustedKeyServer, ...] = field(default_factory=_default_key_servers)
    allow_public_rooms_over_federation: bool = False
    use_insecure_ssl_client_just_for_testing_do_not_use: bool = False
    federation: FederationConfig = FederationConfig()

    def __post_init__(self) -> None:
        if not is_valid_server_name(self.server_name):
            raise ValueError(
                f"server_name: {self.server_name!r} is not a valid server name "
                "(a host name, IPv4 address or [IPv6] address, optionally with :port)"
            )
        if self.default_room_version not in KNOWN_ROOM_VERSIONS:
            raise ValueError(
                f"default_room_version: {self.default_room_version!r} is not one of "
                + ", ".join(KNOWN_ROOM_VERSIONS)
            )
        if self.public_baseurl is not None and not self.public_baseurl.startswith(
            ("http://", "https://")
        ):
            raise ValueError("public_baseurl: must start with http:// or https://")
        if not 4 <= self.bcrypt_rounds <= 31:
            raise ValueError("bcrypt_rounds: must be between 4 and 31")
        object.__setattr__(
            self,
            "refreshable_access_token_lifetime",
            parse_duration(self.refreshable_access_token_lifetime, "refreshable_access_token_lifetime"),
        )
        if self.refresh_token_lifetime is not None:
            object.__setattr__(
                self, "refresh_token_lifetime", parse_duration(self.refresh_token_lifetime, "refresh_token_lifetime")
            )
        object.__setattr__(self, "max_upload_size", parse_size(self.max_upload_size, "max_upload_size"))
        object.__setattr__(self, "max_spider_size", parse_size(self.max_spider_size, "max_spider_size"))
        for key in ("url_preview_ip_range_blacklist", "url_preview_ip_range_whitelist", "ip_range_blacklist",
                    "ip_range_whitelist"):
            for network in getattr(self, key):
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError:
                    raise ValueError(f"{key}: {network!r} is not an IP range such as 10.0.0.0/8") from None
        object.__setattr__(self, "turn_user_lifetime", parse_duration(self.turn_user_lifetime, "turn_user_lifetime"))
        if self.enable_registration and not (
            self.enable_registration_without_verification or self.registration_requires_token
        ):
            raise ValueError(
                "enable_registration: open registration needs a check on who registers; set "
                "registration_requires_token (admin-issued tokens) or, knowingly, "
                "enable_registration_without_verification"
            )

    @property
    def base_url(self) -> str:
        """The client-facing base URL, always ending in `/` (Synapse's default when unset)."""
        url = self.public_baseurl or f"https://{self.server_name}/"
        return url if url.endswith("/") else url + "/"

    @property
    def signing_key_file(self) -> Path:
        return self.signing_key_path or self.data_dir / "signing.key"

    @property
    def media_store_file(self) -> Path:
        return self.media_store_path or self.data_dir / "media_store"

    @property
    def max_upload_size_bytes(self) -> int:
        return int(self.max_upload_size)

    @property
    def max_spider_size_bytes(self) -> int:
        return int(self.max_spider_size)

    @property
    def embedded_database_dir(self) -> Path:
        return self.data_dir / "postgres"


def parse_config(data: Any) -> Config:
    """Validate already-loaded YAML data; `None` (an empty file) means all defaults."""
    if isinstance(data, dict) and "log_level" in data and isinstance(data["log_level"], str):
        data = {**data, "log_level": data["log_level"].upper()}
    return from_mapping(Config, data)


def load_config(path: Path | None, data_dir: Path | None = None) -> Config:
    """Read and validate the config file; `--data-dir` overrides `data_dir`."""
    data: Any = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from None
    config = parse_config(data)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    return config
