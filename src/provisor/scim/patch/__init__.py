"""SCIM PATCH (RFC 7644 section 3.5.2): parse a PatchOp message, apply it to a resource dict
atomically, and turn Group ``members`` operations into O(k) membership deltas.

Entra ID and Okta dialects are tolerated through the switches of
:mod:`provisor.scim.compat.patch_ops` (Q1-Q8, 1.3, 1.4 of entra-behaviour.md).
"""

from __future__ import annotations

from provisor.scim.patch.apply import apply_patch
from provisor.scim.patch.members import (
    Member,
    MemberDelta,
    MemberLookup,
    apply_member_operations,
    split_member_operations,
)
from provisor.scim.patch.request import MAX_OPERATIONS, PATCH_OP_URN, PatchOperation, parse_patch_request

__all__ = [
    "MAX_OPERATIONS",
    "PATCH_OP_URN",
    "Member",
    "MemberDelta",
    "MemberLookup",
    "PatchOperation",
    "apply_member_operations",
    "apply_patch",
    "parse_patch_request",
    "split_member_operations",
]
