"""Django's 500 handler: an unreachable database or media store is a 503 the client may retry."""

import sys

from django.http import HttpResponse, JsonResponse

from ..errors import DATABASE_DOWN, STORE_UNAVAILABLE, UNAVAILABLE, StoreUnavailable


def server_error(request):
    error = sys.exc_info()[1]
    if isinstance(error, (*DATABASE_DOWN, StoreUnavailable)):
        database = isinstance(error, DATABASE_DOWN)
        if request.path.startswith("/api/"):
            return JsonResponse(UNAVAILABLE if database else STORE_UNAVAILABLE, status=503, headers={"Retry-After": "30"})
        what = "The database" if database else "The media store"
        return HttpResponse("<!doctype html><title>Unavailable</title><h1>tsreview is briefly unavailable</h1>"
                            f"<p>{what} cannot be reached. Nothing was changed; try again in a minute.</p>",
                            status=503, headers={"Retry-After": "30"})
    if request.path.startswith("/api/"):  # every API answer is JSON, an unexpected error too
        return JsonResponse({"errors": {"server": ["Internal error; nothing more is said here. It was logged."]}}, status=500)
    return HttpResponse("<!doctype html><title>Error</title><h1>Something went wrong</h1>", status=500)


def bad_request(request, exception=None):
    """Django's 400 handler (a bad Host header, say): JSON on the API, as every API error is."""
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": {"request": ["Bad request (the Host header or the request line)."]}}, status=400)
    return HttpResponse("<!doctype html><title>Bad request</title><h1>Bad request</h1>", status=400)


def not_found(request, exception=None):
    """Django's 404 handler: JSON on the API (an unknown path there too), the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": {"path": ["Not found."]}}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
