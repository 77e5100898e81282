"""Scanner bearer tokens: made once by create_scanner, stored only as a SHA-256."""

import hashlib
import secrets

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from ..models import Scanner

TOKEN_PREFIX = "tsr_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_new() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ScannerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword or not token.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        scanner = Scanner.objects.filter(token_hash=token_hash(token.strip()), is_active=True).first()
        if scanner is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked token.")
        return scanner, None

    def authenticate_header(self, request):
        return self.keyword


class IsScanner(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, Scanner)


class ScannerTokenScheme(OpenApiAuthenticationExtension):
    """The bearer token in the OpenAPI document."""

    target_class = ScannerTokenAuthentication
    name = "scannerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A token from `manage.py create_scanner NAME`."}
