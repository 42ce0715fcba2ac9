"""Server configuration, built by the composition roots (CLI, tests); nothing below reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

#: The most group references (values of Users' ``groups``, RFC 7643 section 4.1.2) one page of a
#: list or search carries: a page whose Users are in more groups together ends at the User that
#: reaches it, with ``itemsPerPage`` below ``count`` (RFC 7644 section 3.4.2.4 lets a service
#: provider return fewer results than asked for) and ``totalResults`` exact. A page of 1,000
#: Users each in 1,000 groups would otherwise be a million references: ~160 MB of JSON and
#: several times that in the server's memory, from one request. 100,000 is 100 such Users, a
#: full page of 1,000 Users in up to 100 groups each.
PAGE_GROUP_REFS = 100_000


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Limits and defaults of one server; tenants may lower ``max_page_size`` for themselves."""

    base_path: str = "/scim/v2"
    max_body_bytes: int = 1_048_576
    default_page_size: int = 100
    max_page_size: int = 1000
    #: See :data:`PAGE_GROUP_REFS`.
    page_group_refs: int = PAGE_GROUP_REFS
    bulk_max_operations: int = 1000
    bulk_max_payload_bytes: int = 1_048_576
    token_cache_seconds: float = 1.0
    #: How often the server asks its store whether extension schemas were declared or removed
    #: (``provisor schema``) since it last looked; 0 never asks (the schemas of its start stay).
    schema_check_seconds: float = 2.0
    access_log: bool = True
    #: ``documentationUri`` of /ServiceProviderConfig: where the app documents its SCIM endpoint
    #: for the admins who connect it (RFC 7643 section 5); left out when None.
    documentation_uri: str | None = None
    #: The address clients reach the server at (``https://scim.example.com``, with a path prefix
    #: a proxy adds, if any), when a proxy in front of it does not pass on the Host it was asked
    #: for: ``meta.location``, ``Location`` and ``$ref`` start with it. None: the request's own
    #: scheme (``X-Forwarded-Proto`` from a trusted proxy), Host and root path.
    public_url: str | None = None

    @property
    def bulk_payload_limit(self) -> int:
        """The largest /Bulk body (``maxPayloadSize``): its own limit, or ``max_body_bytes`` when
        that is lower (an operator who lowers the request body limit lowers it for /Bulk too)."""
        return min(self.bulk_max_payload_bytes, self.max_body_bytes)
