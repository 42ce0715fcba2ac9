"""The SCIM 2.0 protocol core: pure data in, data out, no I/O (RFC 7643, RFC 7644)."""
