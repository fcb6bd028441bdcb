"""The Litestar API: app factory, error mapping, auth guards."""
