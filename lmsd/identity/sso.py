"""Sign-in with a campus's own identity provider: OpenID Connect, authorization code + PKCE.

The authorization request state (state, nonce, PKCE verifier) travels in a short-lived cookie
signed with the deployment's session secret, so no server-side session is needed. The ID token
is verified against the provider's published keys (issuer, audience, expiry, nonce); the account
is matched by e-mail on the provider's campus and created on first sign-in.

An e-mail address counts only when the provider vouches for it: the ID token says
``email_verified: true``, or a campus admin marked the provider as trusted for e-mail
(``trust_email``, for providers that only hand out addresses they own but omit the claim; an
explicit false is still refused).
Anything else (the claim missing, false, or "true" as a string) is refused before an account is
looked up, so an address typed into some provider's profile never opens the account that has it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

with warnings.catch_warnings():  # authlib announces a future module move on import
    import authlib.deprecate  # noqa: F401 - registers authlib's own "always" filter first

    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.db.models import SsoProvider, User
from lmsd.errors import Conflict, Invalid, NotFound, Unauthorized
from lmsd.identity.service import ROLES, identity_of
from lmsd.policy import Identity

STATE_TTL_S = 600
_DISCOVERY_TTL_S = 3600
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}


@dataclass(frozen=True)
class ProviderIn:
    slug: str
    name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"
    default_role: str = "learner"
    trust_email: bool = False  # its e-mails count as verified even without email_verified: true


# The limits of a provider's fields: the API's schema (sso_controller.ProviderBody) states the same.
SLUG_MAX = 64
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
NAME_MAX = 200
TEXT_MAX = 500  # issuer, client id, client secret, scopes
ISSUER_MIN = 8
_SLUG = re.compile(SLUG_PATTERN)


def _length(value: str, field: str, code: str, low: int, high: int) -> list[Invalid]:
    if not value:
        return [Invalid(f"enter {field}", field=field, code=f"sso.{code}_missing")]
    if not low <= len(value) <= high:
        return [Invalid(f"{field} needs {low} to {high} characters", field=field, code=f"sso.{code}_length")]
    return []


def provider_problems(data: ProviderIn) -> list[Invalid]:
    """Every rule a new provider breaks (a form shows them all at once); empty when it is valid."""
    problems = _length(data.slug, "slug", "slug", 1, SLUG_MAX)
    if not problems and not _SLUG.match(data.slug):
        problems.append(Invalid(
            "the slug has lowercase letters, digits and hyphens only", field="slug", code="sso.slug_invalid"
        ))
    problems += _length(data.name, "name", "name", 1, NAME_MAX)
    issuer = _length(data.issuer, "issuer", "issuer", ISSUER_MIN, TEXT_MAX)
    # Plain http only for a provider on this very machine (loopback by nature: development, tests).
    if not issuer and not data.issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        issuer.append(Invalid("the issuer must be an https URL", field="issuer", code="sso.issuer_not_https"))
    problems += issuer
    problems += _length(data.client_id, "client_id", "client_id", 1, TEXT_MAX)
    problems += _length(data.client_secret, "client_secret", "client_secret", 1, TEXT_MAX)
    if len(data.scopes) > TEXT_MAX:
        problems.append(Invalid(f"scopes has at most {TEXT_MAX} characters", field="scopes", code="sso.scopes_length"))
    elif "openid" not in data.scopes.split():
        problems.append(Invalid("scopes must include openid", field="scopes", code="sso.scopes_openid"))
    if data.default_role not in ROLES:
        problems.append(Invalid(
            f"default_role must be one of {', '.join(ROLES)}", field="default_role", code="sso.role_unknown"
        ))
    return problems


async def create_provider(session: AsyncSession, actor: Identity, data: ProviderIn) -> SsoProvider:
    policy.require(actor, "sso.manage")
    for problem in provider_problems(data):
        raise problem
    provider = SsoProvider(
        campus_id=actor.campus_id, slug=data.slug, name=data.name, issuer=data.issuer.rstrip("/"),
        client_id=data.client_id, client_secret=data.client_secret, scopes=data.scopes, default_role=data.default_role,
        trust_email=data.trust_email,
    )
    try:
        # A savepoint: a taken slug undoes this insert only, and the caller's session stays usable
        # (the portal shows its form again; the request still rolls back on the 4xx).
        async with session.begin_nested():
            session.add(provider)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a provider called {data.slug!r} exists on this campus", field="slug", code="sso.slug_taken") from None
    return provider


async def list_providers(session: AsyncSession, actor: Identity) -> list[SsoProvider]:
    policy.require(actor, "sso.manage")
    query = select(SsoProvider).where(SsoProvider.campus_id == actor.campus_id).order_by(SsoProvider.slug)
    return list((await session.scalars(query)).all())


async def enabled_providers(session: AsyncSession, campus_id: uuid.UUID) -> list[SsoProvider]:
    """The providers a campus's sign-in page offers, by name (public: no one is signed in yet)."""
    query = (
        select(SsoProvider)
        .where(SsoProvider.campus_id == campus_id, SsoProvider.enabled.is_(True))
        .order_by(SsoProvider.name)
    )
    return list((await session.scalars(query)).all())


async def _provider(session: AsyncSession, campus_id: uuid.UUID, slug: str) -> SsoProvider:
    provider = await session.scalar(
        select(SsoProvider).where(SsoProvider.campus_id == campus_id, SsoProvider.slug == slug, SsoProvider.enabled)
    )
    if provider is None:
        raise NotFound("no such sign-in provider")
    return provider


async def discover(issuer: str) -> dict[str, Any]:
    cached = _discovery.get(issuer)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            config: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unauthorized(f"the identity provider cannot be reached: {exc}") from None
    if config.get("issuer", "").rstrip("/") != issuer:
        raise Unauthorized("the identity provider's discovery document names another issuer")
    _discovery[issuer] = (time.monotonic() + _DISCOVERY_TTL_S, config)
    return config


def _sign(secret: str, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unsign(secret: str, value: str) -> dict[str, Any]:
    body, _, mac = value.rpartition(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac, expected):
        raise Unauthorized("sign-in state is missing or was tampered with; start again")
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
    if payload.get("exp", 0) < time.time():
        raise Unauthorized("sign-in took too long; start again")
    return payload


async def start(
    session: AsyncSession, campus_id: uuid.UUID, slug: str, redirect_uri: str, session_secret: str
) -> tuple[str, str]:
    """Returns (URL to send the browser to, signed state for the cookie)."""
    provider = await _provider(session, campus_id, slug)
    config = await discover(provider.issuer)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    client = AsyncOAuth2Client(
        provider.client_id, provider.client_secret, scope=provider.scopes, redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        config["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
    )
    cookie = _sign(session_secret, {"c": str(campus_id), "p": slug, "s": state, "n": nonce, "v": verifier,
                                    "exp": time.time() + STATE_TTL_S})
    return url, cookie


async def finish(
    session: AsyncSession,
    campus_id: uuid.UUID,
    slug: str,
    redirect_uri: str,
    session_secret: str,
    cookie: str | None,
    code: str | None,
    state: str | None,
) -> Identity:
    if not cookie or not code or not state:
        raise Unauthorized("sign-in was not completed (missing code, state or cookie)")
    saved = _unsign(session_secret, cookie)
    if saved["c"] != str(campus_id) or saved["p"] != slug or not hmac.compare_digest(saved["s"], state):
        raise Unauthorized("sign-in state does not match; start again")
    provider = await _provider(session, campus_id, slug)
    config = await discover(provider.issuer)
    client = AsyncOAuth2Client(
        provider.client_id, provider.client_secret, scope=provider.scopes, redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    try:
        token = await client.fetch_token(config["token_endpoint"], code=code, code_verifier=saved["v"])
        async with httpx.AsyncClient(timeout=10) as http:
            jwks = (await http.get(config["jwks_uri"])).json()
    except Exception as exc:  # noqa: BLE001 - any failure of the provider is a failed sign-in
        raise Unauthorized(f"the identity provider refused the sign-in: {exc}") from None
    claims = _verify_id_token(token.get("id_token", ""), jwks, provider, saved["n"])
    email = str(claims.get("email", "")).strip().lower()
    if not email:
        raise Unauthorized("the identity provider did not give an e-mail address", code="sso.email_missing")
    if not email_verified(claims, provider):
        raise Unauthorized(
            f"{provider.name} did not confirm that {email} is yours (no email_verified: true), so it cannot "
            "sign you in to an account with that address; sign in with your password, or ask the campus "
            "administrator to mark this provider as trusted for e-mail",
            code="sso.email_unverified",
        )
    user = await session.scalar(select(User).where(User.campus_id == campus_id, User.email == email))
    if user is None:
        user = User(
            campus_id=campus_id, email=email, display_name=str(claims.get("name") or email.split("@")[0])[:200],
            password_hash="!sso", role=provider.default_role,  # "!sso": no password can match
        )
        session.add(user)
        await session.flush()
    return identity_of(user)


def email_verified(claims: dict[str, Any], provider: SsoProvider) -> bool:
    """Whether the ID token's e-mail may name an account: an explicit JSON ``true``; or, from a
    provider the campus admin trusts for e-mail, anything but the provider saying it is not."""
    claim = claims.get("email_verified")
    if claim is True:
        return True
    return bool(provider.trust_email) and claim not in (False, "false")


def _verify_id_token(raw: str, jwks: dict[str, Any], provider: SsoProvider, nonce: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(raw)
        keys = jwt.PyJWKSet.from_dict(jwks)
        key = next((k for k in keys.keys if k.key_id == header.get("kid")), None)
        if key is None:
            raise Unauthorized("the ID token is signed with an unknown key")
        claims: dict[str, Any] = jwt.decode(
            raw, key.key, algorithms=["RS256", "ES256", "EdDSA"], audience=provider.client_id,
            issuer=provider.issuer, options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the ID token is not valid: {exc}") from None
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise Unauthorized("the ID token's nonce does not match this sign-in")
    return claims


async def set_provider_enabled(session: AsyncSession, actor: Identity, provider_id: uuid.UUID, enabled: bool) -> SsoProvider:
    """Offer a provider on the sign-in page again, or stop offering it (its settings are kept)."""
    provider = await session.get(SsoProvider, (actor.campus_id, provider_id))
    if provider is None:
        raise NotFound("no such sign-in provider")
    policy.require(actor, "sso.manage")
    provider.enabled = enabled
    await session.flush()
    return provider
