"""Headers every response carries: a strict CSP and no caching of anything sensitive."""

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "media-src blob:",  # a played segment: the clip fetched on a deliberate play, as a blob
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
# Swagger UI sets style attributes and inline SVG data: URLs; it is the API's own documentation
# page, shows no media, and still runs no inline script.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace("img-src 'self' blob:", "img-src 'self' data:")


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        docs = request.path.startswith("/api/v1/docs")
        response.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if not request.path.startswith("/static/"):
            response.setdefault("Cache-Control", "no-store")
        return response



class NullOriginMiddleware:
    """Lets Django's CSRF protection work on pages that send no referrer.

    With `Referrer-Policy: no-referrer` browsers send `Origin: null` on form posts. When the
    browser also says the post came from this very origin (`Sec-Fetch-Site: same-origin`), the
    origin is restored before Django's CsrfViewMiddleware checks it; the token is checked as
    always. Anything else keeps `null` and is refused."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("HTTP_ORIGIN") == "null" and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
            request.META["HTTP_ORIGIN"] = f"{request.scheme}://{request.get_host()}"
        return self.get_response(request)
