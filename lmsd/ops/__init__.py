"""Operator workflows behind the CLI: install, backup/restore, upgrade.

Each function takes settings and a ``Reporter`` (how to show progress) and raises
:class:`lmsd.errors.LmsdError` with a message for a person when something cannot be done.
"""
