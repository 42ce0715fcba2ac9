"""The provisioning engine: source directory -> scope -> match -> map -> SCIM target (issue 3)."""
