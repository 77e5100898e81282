from django.urls import include, path

from . import accounts, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", accounts.logout, name="logout"),
    path("account/2fa/", accounts.two_factor, name="two-factor"),
    path("lead/", include("reports.lead_urls")),
    path("reports/", include("reports.report_urls")),
    path("claim/", views.claim_next, name="claim-next"),
    path("review/<int:item_id>/", views.review_page, name="review"),
    path("review/<int:item_id>/decide/", views.review_decide, name="review-decide"),
    path("review/<int:item_id>/skip/", views.review_skip, name="review-skip"),
    path("review/<int:item_id>/heartbeat/", views.review_heartbeat, name="review-heartbeat"),
    path("media/<int:item_id>/preview/<str:kind>/", views.media_preview, name="media-preview"),
    path("media/<int:item_id>/original/", views.media_original, name="media-original"),
    path("views/<int:view_id>/", views.view_ended, name="view-ended"),
    path("settings/", views.settings_page, name="settings"),
    path("break/", views.break_taken, name="break-taken"),
]
