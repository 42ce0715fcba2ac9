"""Persistence: the store contract (``base``) and its SQL implementation (``sql``)."""
