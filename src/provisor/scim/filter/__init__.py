"""SCIM filters (RFC 7644 section 3.4.2.2): a parser to a frozen AST, and visitors over it."""
