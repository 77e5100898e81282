from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include("reports.api.urls")),
    # People sign in in one place, with their second factor; the admin's own form is not used.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True), name="admin-login"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("reports.web.urls")),
]

handler500 = "reports.web.errors.server_error"
handler400 = "reports.web.errors.bad_request"
