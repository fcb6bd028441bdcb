"""Campuses (tenants) of a deployment, managed by platform admins."""
