"""Identifier grammars: server names with ports, user ids split on the first colon."""

from __future__ import annotations

import pytest

from homeserver.core.ids import (
    is_valid_server_name,
    is_valid_user_id,
    is_valid_user_localpart,
    server_of,
    split_host_port,
    split_id,
)


@pytest.mark.parametrize(
    "name", ["matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]",
             "[1234:5678::abcd]:5678", "localhost", "localhost:8448", "127.0.0.1:8448"],
)
def test_valid_server_names(name: str) -> None:
    assert is_valid_server_name(name)


@pytest.mark.parametrize(
    "name", ["", "bad name", "example.com:", "example.com:99999", "[zz::1]", "1.2.3.400", "a" * 256,
             "example.com:80:80", "exa_mple.com"],
)
def test_invalid_server_names(name: str) -> None:
    assert not is_valid_server_name(name)


def test_split_on_first_colon_only() -> None:
    assert split_id("@alice:localhost:8448", "@") == ("alice", "localhost:8448")
    assert server_of("@alice:127.0.0.1:8448") == "127.0.0.1:8448"
    assert split_host_port("localhost:8448") == ("localhost", 8448)
    assert split_host_port("[::1]:8448") == ("::1", 8448)
    assert split_host_port("[::1]") == ("::1", None)
    assert split_host_port("example.org") == ("example.org", None)
    with pytest.raises(ValueError):
        split_id("alice:example.org", "@")
    with pytest.raises(ValueError):
        split_id("@alice", "@")


def test_user_ids() -> None:
    assert is_valid_user_id("@alice:example.org")
    assert is_valid_user_id("@Älice:example.org")  # historical localparts are accepted on events
    assert not is_valid_user_id("@Älice:example.org", historical=False)
    assert not is_valid_user_id("@alice:bad name")
    assert not is_valid_user_id("@" + "a" * 250 + ":example.org")
    assert is_valid_user_localpart("a.b_c=d-e/f+g")
    assert not is_valid_user_localpart("Alice")
    assert not is_valid_user_localpart("")
