from django.urls import path

from . import lead_views

urlpatterns = [
    path("decisions/", lead_views.decision_log, name="lead-decisions"),
    path("decisions.csv", lead_views.decision_log_csv, name="lead-decisions-csv"),
    path("items/<int:item_id>/", lead_views.item_detail, name="lead-item"),
    path("items/<int:item_id>/overturn/", lead_views.item_overturn, name="lead-item-overturn"),
    path("escalations/", lead_views.escalations, name="lead-escalations"),
    path("escalations/claim/", lead_views.escalation_claim, name="lead-escalation-claim"),
    path("stats/", lead_views.stats, name="lead-stats"),
]
