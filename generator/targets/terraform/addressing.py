"""Subnet layout inside one VPC (the VPC's own CIDR comes from ``model.networks``)."""

from __future__ import annotations

import ipaddress


def subnets(cidr: ipaddress.IPv4Network, az_count: int) -> tuple[list[str], list[str]]:
    """(private, public) subnets, one per zone: a quarter of the VPC per private subnet,
    and a sixteenth per public one from the last quarter (ALBs and NAT gateways only)."""
    quarters = list(cidr.subnets(prefixlen_diff=2))
    public = list(quarters[3].subnets(prefixlen_diff=2))
    return [str(q) for q in quarters[:az_count]], [str(p) for p in public[:az_count]]
