from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from reports import api

api_v1 = [
    path("submissions", api.SubmissionCreateApi.as_view(), name="submission-create"),
    path("submissions/<str:submission_id>", api.SubmissionDetailApi.as_view(), name="submission-detail"),
    path("submissions/<str:submission_id>/provenance", api.SubmissionProvenanceApi.as_view(), name="submission-provenance"),
    path("schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[]), name="api-docs"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    # People sign in in one place, with their second factor; the admin's own form is not used.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True), name="admin-login"),
    path("admin/", admin.site.urls),
    path("", include("reports.urls")),
]

handler500 = "reports.views.server_error"
