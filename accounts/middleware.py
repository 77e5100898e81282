"""A person signed in by password alone waits for their second factor."""


class TwoFactorMiddleware:
    """Where TSREVIEW_REQUIRE_2FA is on, a person signed in by password alone may only enrol a
    TOTP device (or sign out); everything else waits for a verified second factor."""

    ALLOWED = ("/account/2fa/", "/logout/", "/static/", "/api/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings
        from django.shortcuts import redirect

        user = request.user
        if (settings.TSREVIEW_REQUIRE_2FA and user.is_authenticated and not user.is_verified()
                and not request.path.startswith(self.ALLOWED)):
            return redirect("two-factor")
        return self.get_response(request)
