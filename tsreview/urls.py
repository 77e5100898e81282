from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_login
from reports.web.metrics import metrics

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include("reports.api.urls")),
    # People sign in in one place, with their second factor; the admin's own form is not used.
    # A signed-in non-admin gets a 403 there, not a loop (accounts.views.admin_login).
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),  # Prometheus: a token or a configured address only
    path("", include("accounts.urls")),
    path("", include("reports.web.urls")),
]

handler500 = "reports.web.errors.server_error"
handler400 = "reports.web.errors.bad_request"
handler404 = "reports.web.errors.not_found"
