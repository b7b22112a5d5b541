"""Outbound federation: server discovery, signed requests, the keyring, the sender queues."""
