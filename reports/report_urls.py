from django.urls import path

from . import report_views as views

urlpatterns = [
    path("", views.report_list, name="report-list"),
    path("build/", views.report_build, name="report-build"),
    path("<int:report_id>/", views.report_detail, name="report-detail"),
    path("<int:report_id>/edit/", views.report_edit, name="report-edit"),
    path("<int:report_id>/approve/", views.report_approve, name="report-approve"),
    path("<int:report_id>/retry/", views.report_retry, name="report-retry"),
    path("<int:report_id>/abandon/", views.report_abandon, name="report-abandon"),
    path("<int:report_id>/reopen/", views.report_reopen, name="report-reopen"),
    path("<int:report_id>/xml/", views.report_xml, name="report-xml"),
    path("files/<int:file_id>/move/", views.report_file_move, name="report-file-move"),
    path("files/<int:file_id>/attest/", views.report_attest, name="report-attest"),
    path("holds/<int:hold_id>/extend/", views.hold_extend, name="hold-extend"),
    path("items/<int:item_id>/destroy/", views.material_destroy, name="material-destroy"),
]
