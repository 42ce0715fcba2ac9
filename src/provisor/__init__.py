"""Provisor: automatic user provisioning over SCIM 2.0 (RFC 7643/7644), self-hosted."""

__version__ = "0.1.0"
