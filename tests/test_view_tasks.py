""""View these": a draft report's files nobody viewed, sent by a lead to a reviewer who reveals
them one by one; a confirmed look makes that file's fileViewedByEsp true."""

import pytest
from django.test import Client

from reports.models import AuditEvent, Decision, Report, ViewTask
from reports.reporting.drafting import report_draft_build
from reports.review.decisions import file_viewed, standing_decision

from .factories import look_via, make_item, make_user, make_variant

SEED = 7


@pytest.fixture
def draft(rita, settings):
    """A cluster of three confirmed with one reveal (of the representative): a draft report whose
    two near-duplicates were not viewed."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    rep = make_item(SEED)
    members = [make_variant(SEED, "reencode", amount=40), make_variant(SEED, "brightness", amount=0.1)]
    assert rita.post("/claim/")["Location"] == f"/review/{rep.pk}/"
    look_via(rita, rep.pk)
    response = rita.post(f"/review/{rep.pk}/decide/", {"verdict": "confirmed", "classification": "A1",
                                                        "cluster": ",".join(str(m.pk) for m in members),
                                                        "members": [str(m.pk) for m in members]})
    assert response.status_code == 302
    (report,) = report_draft_build()
    return report, rep, members


def test_the_draft_names_the_unviewed_files_and_a_lead_sends_them_for_a_look(lena, draft):
    report, rep, members = draft
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "2 files not viewed by the reviewer whose confirmation stands" in page
    assert f"items {members[0].pk}, {members[1].pk}" in page and 'id="view-these"' in page
    assert lena.post(f"/reports/{report.pk}/view-task/").status_code == 302
    task = ViewTask.objects.get()
    assert sorted(task.items) == sorted(m.pk for m in members) and task.requested_by.username == "lena"
    assert AuditEvent.objects.get(action="view_task.created").data["items"] == task.items
    # One open task per report: a second request is refused, nothing new stored.
    lena.post(f"/reports/{report.pk}/view-task/")
    assert ViewTask.objects.count() == 1
    assert "already open" in lena.get(f"/reports/{report.pk}/").content.decode()


def test_a_reviewer_views_one_file_and_only_that_one_becomes_viewed(lena, draft, second_reviewer):
    report, rep, members = draft
    lena.post(f"/reports/{report.pk}/view-task/")
    sam = Client()
    sam.force_login(second_reviewer)
    assert "1 request from a lead to view files" in sam.get("/").content.decode()
    response = sam.post("/view-tasks/claim/")
    task = ViewTask.objects.get()
    assert response["Location"] == f"/view-tasks/{task.pk}/"
    page = sam.get(response["Location"]).content.decode()
    for m in members:
        assert f"/media/{m.pk}/preview/thumb/" in page and f'value="{m.pk}" form="decision"' in page
    # Someone else: neither the task nor its files.
    other = Client()
    other.force_login(make_user("ola", "reviewer"))
    assert other.get(f"/view-tasks/{task.pk}/").status_code == 404
    assert other.post(f"/media/{members[0].pk}/original/", {"mode": "hold"}).status_code == 404

    look_via(sam, members[0].pk)  # one reveal, of the first file
    refused = sam.post(f"/view-tasks/{task.pk}/done/", {"members": [str(m.pk) for m in members]})
    assert refused.status_code == 400 and f"not revealed: {members[1].pk}" in refused.content.decode()
    assert not Decision.objects.filter(supersedes__isnull=False).exists()
    done = sam.post(f"/view-tasks/{task.pk}/done/", {"members": [str(members[0].pk)]})
    assert done.status_code == 302

    first, second = (standing_decision(m) for m in members)
    assert first.reviewer == second_reviewer and first.viewed_unblurred and first.supersedes.cluster_decision_id
    assert (first.verdict, first.classification) == ("confirmed", "A1")
    assert file_viewed(first) is True and file_viewed(second) is False
    task.refresh_from_db()
    assert task.done_at and task.confirmed == [members[0].pk]
    assert AuditEvent.objects.get(action="view_task.done").data["not_viewed"] == [members[1].pk]
    assert AuditEvent.objects.filter(action="decision.recorded", data__view_task=task.pk).count() == 1
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "1 file not viewed" in page and f"item {members[1].pk}" in page
    assert "1 viewed and confirmed" in page
    # The task is done: its files are out of reach again.
    assert sam.post(f"/media/{members[1].pk}/original/", {"mode": "hold"}).status_code == 404


def test_a_report_with_every_file_viewed_needs_no_task(lena, rita, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    item = make_item(1)
    rita.post("/claim/")
    look_via(rita, item.pk)
    rita.post(f"/review/{item.pk}/decide/", {"verdict": "confirmed", "classification": "B1"})
    (report,) = report_draft_build()
    assert 'id="view-these"' not in lena.get(f"/reports/{report.pk}/").content.decode()
    lena.post(f"/reports/{report.pk}/view-task/")
    assert not ViewTask.objects.exists()
    assert Report.objects.get(pk=report.pk).state == "draft"
