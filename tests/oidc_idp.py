"""A small but real OpenID Connect provider for tests: discovery, authorize (auto-approves one
configured person), token with PKCE and client authentication, JWKS; RS256 ID tokens.

It runs as an HTTP server on loopback in a thread, so lmsd talks to it over the network exactly
as it would to a university's IdP.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body
from litestar.response import Redirect

from tests.support import free_port_block


class OidcTestProvider:
    def __init__(self, email: str = "ada@uni.example", name: str = "Ada Lovelace", verified: object = True) -> None:
        """``verified`` is the ID token's email_verified claim as given (None: the claim is left out);
        ``person`` may be changed between sign-ins."""
        self.port = free_port_block(1)
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id, self.client_secret = "lmsd-campus", secrets.token_urlsafe(16)
        self.person: dict[str, Any] = {"email": email, "name": name}
        if verified is not None:
            self.person["email_verified"] = verified
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.codes: dict[str, dict[str, Any]] = {}
        self.tamper_nonce = False
        self._server: uvicorn.Server | None = None

    def app(self) -> Litestar:
        idp = self

        @get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": idp.issuer,
                "authorization_endpoint": f"{idp.issuer}/authorize",
                "token_endpoint": f"{idp.issuer}/token",
                "jwks_uri": f"{idp.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @get("/authorize", status_code=302)
        async def authorize(request: Request) -> Redirect:  # type: ignore[type-arg]
            q = request.query_params
            if q.get("client_id") != idp.client_id or q.get("code_challenge_method") != "S256":
                raise HTTPException(status_code=400, detail="bad authorization request")
            code = secrets.token_urlsafe(16)
            idp.codes[code] = {"nonce": q.get("nonce"), "challenge": q.get("code_challenge"), "redirect_uri": q.get("redirect_uri")}
            return Redirect(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state')})}", status_code=302)

        @post("/token", status_code=200)
        async def token(request: Request, data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED)) -> dict[str, Any]:  # type: ignore[type-arg]  # noqa: B008
            auth = request.headers.get("authorization", "")
            creds = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else f"{data.get('client_id')}:{data.get('client_secret')}"
            if creds != f"{idp.client_id}:{idp.client_secret}":
                raise HTTPException(status_code=401, detail="invalid_client")
            grant = idp.codes.pop(data.get("code", ""), None)
            if grant is None or data.get("redirect_uri") != grant["redirect_uri"]:
                raise HTTPException(status_code=400, detail="invalid_grant")
            verifier = data.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if challenge != grant["challenge"]:
                raise HTTPException(status_code=400, detail="invalid_grant (PKCE)")
            now = int(time.time())
            claims = {"iss": idp.issuer, "sub": "u-123", "aud": idp.client_id, "iat": now, "exp": now + 300,
                      "nonce": "forged" if idp.tamper_nonce else grant["nonce"], **idp.person}
            id_token = jwt.encode(claims, idp.key, algorithm="RS256", headers={"kid": idp.kid})
            return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

        @get("/jwks")
        async def jwks() -> dict[str, Any]:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(idp.key.public_key(), as_dict=True)
            jwk.update(kid=idp.kid, use="sig", alg="RS256")
            return {"keys": [jwk]}

        return Litestar([discovery, authorize, token, jwks])

    def __enter__(self) -> OidcTestProvider:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
