from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

urlpatterns = [
    path("submissions", views.SubmissionCreateApi.as_view(), name="submission-create"),
    path("submissions/<str:submission_id>", views.SubmissionDetailApi.as_view(), name="submission-detail"),
    path("submissions/<str:submission_id>/provenance", views.SubmissionProvenanceApi.as_view(), name="submission-provenance"),
    path("events", views.EventListApi.as_view(), name="event-list"),
    path("schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[]),
         name="api-docs"),
]
