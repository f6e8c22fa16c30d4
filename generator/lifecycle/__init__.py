"""The tenant lifecycle: ``new-tenant``, ``update-tenants``, ``remove-tenant`` as library calls,
each all-or-nothing on disk (see docs/tenants.md).
"""
