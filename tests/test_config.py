"""Configuration parsing: defaults, Synapse shapes, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from homeserver.config import Config, load_config, parse_config
from homeserver.config_schema import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_empty_config_is_the_documented_defaults() -> None:
    config = parse_config(None)
    assert config == Config()
    assert config.server_name == "localhost"
    (listener,) = config.listeners
    assert (listener.port, listener.bind_addresses) == (8008, ("127.0.0.1",))
    assert listener.resource_names == {"client", "federation"}
    assert config.database.embedded
    assert config.data_dir == Path("data")
    assert config.signing_key_file == Path("data/signing.key")
    assert config.embedded_database_dir == Path("data/postgres")
    assert config.base_url == "https://localhost/"


def test_example_file_documents_exactly_the_defaults() -> None:
    example = yaml.safe_load((REPO / "config.example.yaml").read_text())
    assert parse_config(example) == Config()
    documented = set(example)
    accepted = set(Config.__dataclass_fields__)
    assert documented == accepted, "config.example.yaml must document every key"


def test_synapse_shaped_snippets_are_accepted() -> None:
    config = parse_config(
        {
            "server_name": "example.com:8448",
            "public_baseurl": "https://matrix.example.com",
            "listeners": [
                {
                    "port": 8008,
                    "tls": False,
                    "type": "http",
                    "x_forwarded": True,
                    "bind_addresses": ["::1", "127.0.0.1"],
                    "resources": [{"names": ["client", "federation"], "compress": False}],
                },
                {"port": 8448, "resources": ["federation"]},
            ],
            "database": {
                "name": "psycopg2",
                "args": {"user": "synapse", "password": "pw", "database": "synapse",
                         "host": "localhost", "cp_min": 5, "cp_max": 10},
            },
            "log_level": "debug",
        }
    )
    assert config.base_url == "https://matrix.example.com/"
    assert config.listeners[1].resource_names == {"federation"}
    assert not config.database.embedded
    assert config.database.connect_kwargs() == {
        "user": "synapse", "password": "pw", "database": "synapse", "host": "localhost",
    }
    assert config.log_level == "DEBUG"


def test_dsn_selects_an_external_database() -> None:
    config = parse_config({"database": {"dsn": "postgresql://u:p@db/hs"}})
    assert not config.database.embedded
    assert config.database.connect_kwargs() == {"dsn": "postgresql://u:p@db/hs"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sever_name": "x"}, "sever_name: unknown key; allowed here: "),
        ({"server_name": 5}, "server_name: expected a string, got number 5"),
        ({"server_name": "bad name!"}, "server_name: 'bad name!' is not a valid server name"),
        ({"enable_registration": "yes"}, "enable_registration: expected true or false, got string 'yes'"),
        ({"listeners": {"port": 1}}, "listeners: expected a list, got a mapping"),
        ({"listeners": [{"port": "80"}]}, "listeners[0].port: expected an integer, got string '80'"),
        ({"listeners": [{}]}, "listeners[0].port: missing; expected an integer"),
        ({"listeners": [{"port": 70000}]}, "port: must be between 0 and 65535"),
        ({"listeners": [{"port": 1, "resources": ["replication"]}]},
         "listeners[0].resources[0].names[0]: expected one of 'client', 'federation'"),
        ({"listeners": [{"port": 1, "tls": True}]}, "tls: true needs tls_certificate_path"),
        ({"listeners": [{"port": 1, "tls_certificate_path": "a.pem"}]},
         "tls_certificate_path and tls_private_key_path must be given together"),
        ({"listeners": [{"port": 1, "bogus": 1}]}, "listeners[0].bogus: unknown key"),
        ({"database": {"name": "sqlite3"}}, "database.name: expected one of 'psycopg2', 'postgresql'"),
        ({"database": {"args": {"cp_min": 5, "cp_max": 2}}}, "cp_min must be at least 1"),
        ({"log_level": "LOUD"}, "log_level: expected one of 'DEBUG'"),
        ({"default_room_version": "13"}, "default_room_version: '13' is not one of 1, 2,"),
        ({"public_baseurl": "matrix.example.com"}, "public_baseurl: must start with http"),
        (["a", "list"], "config: expected a mapping, got a list"),
    ],
)
def test_each_mistake_names_the_key_and_what_is_allowed(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("server_name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)


def test_data_dir_override(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data_dir: /var/lib/hs\n")
    assert load_config(path).data_dir == Path("/var/lib/hs")
    config = load_config(path, data_dir=tmp_path / "d")
    assert config.data_dir == tmp_path / "d"
    assert config.signing_key_file == tmp_path / "d" / "signing.key"


def test_config_objects_are_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.server_name = "other"  # type: ignore[misc]
