"""Every API error is {"errors": {"<field>": ["<reason>", ...]}} with a 4xx status."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from ..errors import DATABASE_DOWN, STORE_UNAVAILABLE, UNAVAILABLE, Refused, StoreUnavailable
from ..intake.provenance import flatten_errors


class ApiError(exceptions.APIException):
    """An error about one named part of the request."""

    def __init__(self, status_code: int, field: str, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.field = field


# The part of the request each framework error is about.
FIELDS = {
    exceptions.NotAuthenticated: "authorization",
    exceptions.AuthenticationFailed: "authorization",
    exceptions.PermissionDenied: "authorization",
    exceptions.NotFound: "id",
    exceptions.MethodNotAllowed: "method",
    exceptions.UnsupportedMediaType: "content_type",
    exceptions.ParseError: "body",
    exceptions.Throttled: "rate",
    exceptions.NotAcceptable: "accept",
}




def exception_handler(exc, context):
    if isinstance(exc, DATABASE_DOWN):
        return Response(UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})
    if isinstance(exc, StoreUnavailable):
        return Response(STORE_UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})
    if isinstance(exc, Refused):  # a stage refused: each named field and why
        errors = {field: message if isinstance(message, list) else [message] for field, message in exc.errors.items()}
        return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    if isinstance(exc, ApiError):
        errors = {exc.field: [str(exc.detail)]}
    elif isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
    else:
        errors = {FIELDS.get(type(exc), "request"): [str(exc.detail)]}
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    code = exc.status_code
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        code = status.HTTP_401_UNAUTHORIZED
        headers["WWW-Authenticate"] = "Bearer"
    return Response({"errors": errors}, status=code, headers=headers)
