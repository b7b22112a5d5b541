"""Server ACL matching (m.room.server_acl schema rules)."""

from __future__ import annotations

import pytest

from homeserver.core.server_acl import server_allowed

ACL = {"allow": ["*"], "deny": ["evil.example", "*.bad.example", "ba?.example"], "allow_ip_literals": False}


@pytest.mark.parametrize("server, allowed", [
    ("good.example", True), ("good.example:8448", True), ("evil.example", False), ("evil.example:1234", False),
    ("x.bad.example", False), ("bar.example", False), ("barr.example", True), ("EVIL.example", False),
    ("1.2.3.4", False), ("1.2.3.4:8448", False), ("[::1]:8448", False),
])
def test_acl(server: str, allowed: bool) -> None:
    assert server_allowed(ACL, server) is allowed


def test_empty_allow_denies_everyone_and_ip_literals_default_allowed() -> None:
    assert server_allowed({}, "any.example") is False
    assert server_allowed({"allow": ["*"]}, "10.0.0.1:8448") is True
    assert server_allowed({"allow": ["*.example"], "deny": []}, "a.example") is True
    assert server_allowed({"allow": ["[a-z]*"]}, "a.example") is False  # brackets are literal, not a class
    assert server_allowed({"allow": "*"}, "a.example") is False  # not a list
