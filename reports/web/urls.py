"""The HTML pages: a reviewer's, a lead's, and the lead's CyberTipline reports."""

from django.urls import include, path

from . import feedback, leads, reports, review

lead = [
    path("decisions/", leads.decision_log, name="lead-decisions"),
    path("decisions.csv", leads.decision_log_csv, name="lead-decisions-csv"),
    path("items/<int:item_id>/", leads.item_detail, name="lead-item"),
    path("items/<int:item_id>/overturn/", leads.item_overturn, name="lead-item-overturn"),
    path("items/<int:item_id>/split/", leads.cluster_split, name="lead-cluster-split"),
    path("escalations/", leads.escalations, name="lead-escalations"),
    path("escalations/claim/", leads.escalation_claim, name="lead-escalation-claim"),
    path("stats/", leads.stats, name="lead-stats"),
    path("audit/", leads.audit_log, name="lead-audit"),
    path("calibration/", feedback.calibration_page, name="lead-calibration"),
    path("calibration.<str:fmt>", feedback.calibration_export, name="lead-calibration-export"),
    path("quarantine/", feedback.quarantine_list, name="lead-quarantine"),
    path("quarantine/<int:quarantine_id>/lift/", feedback.quarantine_lift, name="lead-quarantine-lift"),
    path("lists/", feedback.lists_page, name="lead-lists"),
    path("lists/export/", feedback.list_export, name="lead-list-export"),
    path("notices/", feedback.notice_list, name="lead-notices"),
    path("notices/<int:notice_id>/send/", feedback.notice_send, name="lead-notice-send"),
    path("notices/<int:notice_id>/acknowledge/", feedback.notice_acknowledge, name="lead-notice-acknowledge"),
    path("webhooks/", feedback.dead_letters, name="lead-webhooks"),
    path("webhooks/replay/", feedback.dead_letters_replay, name="lead-webhooks-replay"),
]

report = [
    path("", reports.report_list, name="report-list"),
    path("build/", reports.report_build, name="report-build"),
    path("<int:report_id>/", reports.report_detail, name="report-detail"),
    path("<int:report_id>/edit/", reports.report_edit, name="report-edit"),
    path("<int:report_id>/approve/", reports.report_approve, name="report-approve"),
    path("<int:report_id>/retry/", reports.report_retry, name="report-retry"),
    path("<int:report_id>/abandon/", reports.report_abandon, name="report-abandon"),
    path("<int:report_id>/reopen/", reports.report_reopen, name="report-reopen"),
    path("<int:report_id>/xml/", reports.report_xml, name="report-xml"),
    path("<int:report_id>/view-task/", reports.report_view_task, name="report-view-task"),
    path("files/<int:file_id>/move/", reports.report_file_move, name="report-file-move"),
    path("files/<int:file_id>/attest/", reports.report_attest, name="report-attest"),
    path("holds/<int:hold_id>/extend/", reports.hold_extend, name="hold-extend"),
    path("items/<int:item_id>/destroy/", reports.material_destroy, name="material-destroy"),
]

urlpatterns = [
    path("", review.home, name="home"),
    path("lead/", include(lead)),
    path("reports/", include(report)),
    path("claim/", review.claim_next, name="claim-next"),
    path("review/<int:item_id>/", review.review_page, name="review"),
    path("review/<int:item_id>/decide/", review.review_decide, name="review-decide"),
    path("review/<int:item_id>/skip/", review.review_skip, name="review-skip"),
    path("review/<int:item_id>/heartbeat/", review.review_heartbeat, name="review-heartbeat"),
    path("media/<int:item_id>/preview/<str:kind>/", review.media_preview, name="media-preview"),
    path("media/<int:item_id>/original/", review.media_original, name="media-original"),
    path("media/<int:item_id>/segment/", review.media_segment, name="media-segment"),
    path("views/<int:view_id>/", review.view_ended, name="view-ended"),
    path("view-tasks/claim/", review.view_task_claim, name="view-task-claim"),
    path("view-tasks/<int:task_id>/", review.view_task_page, name="view-task"),
    path("view-tasks/<int:task_id>/done/", review.view_task_done, name="view-task-done"),
    path("settings/", review.settings_page, name="settings"),
    path("break/", review.break_taken, name="break-taken"),
]
