"""Coarsen client IPs before anything is stored or logged (SPEC "Privacy").

A /24 (IPv4) or /48 (IPv6) still tells a country and usually a city, which is all
statistics need, but no longer points at one household.
"""

from __future__ import annotations

import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 48
_IPV4_MASK = (2**32 - 1) ^ (2 ** (32 - IPV4_PREFIX) - 1)
_IPV6_MASK = (2**128 - 1) ^ (2 ** (128 - IPV6_PREFIX) - 1)


def truncate_ip(ip: str) -> str:
    """`81.2.69.160` -> `81.2.69.0`; an IPv6 address -> its /48 network address; "" when not an IP."""
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except (ValueError, TypeError, AttributeError):
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # `::ffff:81.2.69.160` is an IPv4 client seen through a dual-stack socket: keep its /24.
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(address) & _IPV4_MASK))
    return str(ipaddress.IPv6Address(int(address) & _IPV6_MASK))
