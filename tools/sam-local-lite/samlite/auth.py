"""Authorisation as the HTTP API does it: JWT authorizers and IAM (SigV4) routes.

The local identity provider is an RSA key pair generated once under ``<state dir>/jwt/``;
:func:`mint_token` signs RS256 tokens with it (``samlite token``), and :func:`verify_jwt` checks
a request's token the way API Gateway's JWT authorizer does: RSA signature by a known ``kid``,
``iss`` equal to the authorizer's issuer, ``aud`` (or ``client_id``) among its audiences,
``exp`` in the future, ``nbf`` in the past, and, when the route lists scopes, at least one of
them in the token's ``scope`` (or ``scp``) claim.

IAM routes: the local stack does not know the caller's secret key, so it checks the *shape* of
a SigV4 ``Authorization`` header (algorithm, credential scope for ``execute-api``, signed
headers, a request date within 15 minutes) and not the signature itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "AuthError",
    "KeyPair",
    "SigV4Caller",
    "load_key_pair",
    "mint_token",
    "parse_sigv4",
    "verify_jwt",
]

RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
"""API Gateway's JWT authorizer supports RSA-based algorithms only."""
SIGV4_MAX_SKEW_S = 15 * 60


class AuthError(Exception):
    """The request is not authorised: ``status`` is 401 or 403, as API Gateway answers."""

    def __init__(self, status: int, message: str, description: str = "") -> None:
        super().__init__(description or message)
        self.status = status
        self.message = message
        self.description = description


@dataclass(frozen=True)
class KeyPair:
    kid: str
    private_pem: bytes
    public_pem: bytes


def _kid(public_pem: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(public_pem).digest()[:12]).decode().rstrip("=")


def load_key_pair(state_dir: Path) -> KeyPair:
    """The local signing key under ``state_dir/jwt``, generated (race-free) on first use."""
    folder = state_dir / "jwt"
    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / "private.pem"
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = folder / f".private-{uuid.uuid4().hex}.pem"
        temporary.write_bytes(pem)
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, private_path)  # fails if another process won the race
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    private_pem = private_path.read_bytes()
    private_key = serialization.load_pem_private_key(private_pem, password=None)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with contextlib.suppress(OSError):
        (folder / "public.pem").write_bytes(public_pem)
    return KeyPair(_kid(public_pem), private_pem, public_pem)


def mint_token(
    keys: KeyPair,
    *,
    subject: str,
    issuer: str,
    audience: str,
    scopes: Sequence[str] = (),
    ttl_seconds: int = 3600,
    now: float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """An RS256 access token that the local JWT authorizer accepts."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "token_use": "access",
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    claims.update(extra_claims or {})
    return jwt.encode(claims, keys.private_pem, algorithm="RS256", headers={"kid": keys.kid})


def _token_scopes(claims: Mapping[str, Any]) -> list[str]:
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [str(item) for item in value]
    return []


def verify_jwt(
    keys: KeyPair,
    header_value: str | None,
    *,
    issuer: str,
    audience: Sequence[str],
    required_scopes: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """The token's claims and scopes; raises AuthError (401, or 403 for missing scopes)."""
    if not header_value:
        raise AuthError(401, "Unauthorized")
    token = header_value.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthError(401, "Unauthorized", f"the token is not a JWT: {exc}") from exc
    if header.get("alg") not in RSA_ALGORITHMS:
        raise AuthError(401, "Unauthorized", f"algorithm {header.get('alg')} is not supported")
    if header.get("kid") != keys.kid:
        raise AuthError(401, "Unauthorized", "the token's kid is not a key of the issuer")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            keys.public_pem,
            algorithms=list(RSA_ALGORITHMS),
            issuer=issuer,
            options={"require": ["exp", "iss"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(401, "Unauthorized", str(exc)) from exc
    audiences = claims.get("aud", claims.get("client_id"))
    token_audiences = audiences if isinstance(audiences, list) else [audiences]
    if not any(item in audience for item in token_audiences):
        raise AuthError(401, "Unauthorized", "the token's audience is not accepted")
    scopes = _token_scopes(claims)
    if required_scopes and not set(scopes) & set(required_scopes):
        raise AuthError(403, "Forbidden", f"the route needs one of: {' '.join(required_scopes)}")
    return claims, scopes


# --------------------------------------------------------------------------- SigV4

_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class SigV4Caller:
    access_key: str
    region: str
    service: str


def parse_sigv4(
    authorization: str | None, amz_date: str | None, *, service: str | None = None
) -> SigV4Caller:
    """The caller of a SigV4-signed request; raises AuthError(403) if it is not one."""
    if not authorization:
        raise AuthError(403, "Forbidden", "the request is not signed")
    match = _SIGV4.match(authorization.strip())
    if match is None:
        raise AuthError(403, "Forbidden", "the Authorization header is not AWS4-HMAC-SHA256")
    parts = match.group("credential").split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthError(403, "Forbidden", "malformed credential scope")
    access_key, _, region, scope_service, _ = parts
    if service is not None and scope_service != service:
        raise AuthError(403, "Forbidden", f"signed for {scope_service}, not {service}")
    if "host" not in match.group("signed").split(";"):
        raise AuthError(403, "Forbidden", "the host header must be signed")
    try:
        signed_at = datetime.strptime(amz_date or "", "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise AuthError(403, "Forbidden", "X-Amz-Date is missing or malformed") from exc
    if abs(time.time() - signed_at.timestamp()) > SIGV4_MAX_SKEW_S:
        raise AuthError(403, "Forbidden", "Signature expired")
    return SigV4Caller(access_key, region, scope_service)


def caller_of(authorization: str | None) -> str | None:
    """The access key of a SigV4 ``Authorization`` header, without checking anything else."""
    if not authorization:
        return None
    match = re.search(r"Credential=([^/,\s]+)/", authorization)
    return match.group(1) if match else None
