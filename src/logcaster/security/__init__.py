"""Security (SPEC §9): TLS, tokens and roles, audit, rate limits, redaction, field
encryption. docs/security.md has the threat model and the operator's guide."""
