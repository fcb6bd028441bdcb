"""Identity: local accounts, password hashing, access tokens (SSO and refresh: issue 3)."""
