"""Whether a host names this machine itself, for the checks that let something through in clear
text only to it: docker's plain-HTTP registries, a DOCKER_HOST over tcp://, a validation request
carrying an Authorization header."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name, an IPv4 address, an IPv6 one with or without its brackets, no
    port) is ``localhost``, in 127.0.0.0/8, ``::1``, or 127.0.0.0/8 mapped into IPv6 (as Go's
    IsLoopback, which docker uses, takes it). Any other name is not, whatever it resolves to: what
    DNS answers for it can change, and the checks are made before any lookup."""
    host = host.strip("[]").lower()  # names are case-blind: LocalHost is localhost
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)
