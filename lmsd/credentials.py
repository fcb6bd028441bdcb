"""Secrets generated once at install, kept apart from the config file.

They live in ``<data_dir>/secrets/secrets.toml``: the folder is mode 0700 and the file 0600,
owned by whoever installed lmsd. Nothing prints them; ``lmsd config show`` masks them.
"""

from __future__ import annotations

import os
import secrets
import stat
import tomllib
import uuid
from pathlib import Path

import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmsd.errors import Invalid, OperationFailed


def _token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


SECRETS_DIR = "secrets"
SECRETS_FILE = "secrets.toml"
MASK = "********"


class Secrets(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    postgres_superuser_password: str
    postgres_password: str
    nats_password: str
    jwt_key_id: str
    jwt_signing_key_pem: str
    session_secret: str
    media_signing_key: str
    admin_initial_password: str
    # Added after the first release: an older secrets file lacks it, so it has a default and
    # `load` writes the generated value back (every process must agree on one password).
    postgres_replication_password: str = Field(default_factory=_token)

    def __repr__(self) -> str:  # never show values, even in a traceback
        return f"Secrets({', '.join(f'{k}={MASK}' for k in type(self).model_fields)})"

    __str__ = __repr__

    def masked(self) -> dict[str, str]:
        return {name: MASK for name in type(self).model_fields}


def secrets_path(data_dir: Path) -> Path:
    return data_dir / SECRETS_DIR / SECRETS_FILE


def generate() -> Secrets:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return Secrets(
        postgres_superuser_password=_token(),
        postgres_password=_token(),
        nats_password=_token(),
        jwt_key_id=uuid.uuid4().hex[:16],
        jwt_signing_key_pem=pem,
        session_secret=_token(),
        media_signing_key=_token(),
        # Readable words are kinder to type once; 4 random groups give ~80 bits.
        admin_initial_password="-".join(secrets.token_hex(5) for _ in range(4)),
    )


def ensure(data_dir: Path) -> tuple[Secrets, bool]:
    """Load the install's secrets, generating them the first time. Returns (secrets, created)."""
    path = secrets_path(data_dir)
    if path.exists():
        return load(data_dir), False
    created = generate()
    write(data_dir, created)
    return created, True


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600 from the first byte), atomically."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)  # an existing tmp file keeps its mode through O_CREAT
    os.replace(tmp, path)


def write(data_dir: Path, value: Secrets) -> None:
    path = secrets_path(data_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    header = "# lmsd secrets: generated at install. Keep this file private (mode 0600).\n"
    write_private(path, header + tomli_w.dumps(value.model_dump()))


def load(data_dir: Path) -> Secrets:
    path = secrets_path(data_dir)
    if not path.exists():
        raise OperationFailed(f"no secrets at {path}: run `lmsd install` first")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise OperationFailed(
            f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}` and retry"
        )
    try:
        stored = tomllib.loads(path.read_text())
        value = Secrets.model_validate(stored)
    except (tomllib.TOMLDecodeError, ValidationError):
        raise Invalid(f"{path} is damaged; restore it from a backup") from None
    if not set(Secrets.model_fields) <= set(stored):
        write(data_dir, value)  # persist secrets added by an upgrade, generated just now
    return value
