"""Test support for the Citus suites: whether the PostgreSQL lmsd runs has the citus extension.

The suites need Citus installed into the pgserver wheel's PostgreSQL (``scripts/citus``, which
``scripts/test`` runs when ``../shared/citus`` exists). Without it they are skipped, with the reason.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lmsd.runtime.binaries import postgres_tool


def _pg_config(flag: str) -> Path:
    out = subprocess.run([str(postgres_tool("pg_config")), flag], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def citus_installed() -> bool:
    """True when the pgserver PostgreSQL has the citus extension (library and control file)."""
    return (_pg_config("--pkglibdir") / "citus.so").is_file() and (
        _pg_config("--sharedir") / "extension" / "citus.control"
    ).is_file()


requires_citus = pytest.mark.skipif(
    not citus_installed(),
    reason="Citus is not installed in the pgserver PostgreSQL "
    "(scripts/citus installs it; scripts/test runs it when ../shared/citus exists)",
)
