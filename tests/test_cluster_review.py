"""A cluster reviewed as one task: one decision for the ticked members, each member its own
Decision, unticked members back in the queue, fileViewedByEsp per file, a lead's split."""

import pytest
from django.test import Client

from reports.models import AuditEvent, Decision, Item, ViewEvent
from reports.review.decisions import file_viewed, standing_decision

from .factories import look_via, make_item, make_user, make_variant, push

SEED = 7
NEAR = [("reencode", 40), ("resize", 0.75), ("crop", 0.005), ("brightness", 0.1)]


@pytest.fixture
def cluster(db, settings):
    """A picture and four near-copies: one waiting task of five files."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    rep = make_item(SEED)
    members = [make_variant(SEED, kind, amount=amount) for kind, amount in NEAR]
    assert all(m.cluster_of_id == rep.pk for m in members)
    return rep, members


def _claim(client, rep):
    response = client.post("/claim/")
    assert response.status_code == 302 and response["Location"] == f"/review/{rep.pk}/"
    return client.get(response["Location"])


def _decide(client, rep, members, ticked, **fields):
    body = {"verdict": "confirmed", "classification": "A1", "cluster": ",".join(str(m.pk) for m in members),
            "members": [str(m.pk) for m in ticked], **fields}
    return client.post(f"/review/{rep.pk}/decide/", body)


def test_the_review_page_shows_the_cluster_blurred_with_count_and_distances(rita, cluster):
    rep, members = cluster
    page = _claim(rita, rep).content.decode()
    assert "this file and 4 near-duplicates" in page
    for m in members:
        assert f'/media/{m.pk}/preview/thumb/' in page  # server-made blurred thumbnails
        assert f'name="members" value="{m.pk}"' in page
        assert f"distance {m.cluster_distance}" in page
        assert f"/media/{m.pk}/original/" in page  # only asked for on a deliberate reveal
    assert ViewEvent.objects.count() == 0
    # The thumbnails are the blurred previews, reachable by the claim holder only.
    assert rita.get(f"/media/{members[0].pk}/preview/thumb/").status_code == 200
    other = Client()
    other.force_login(make_user("sam", "reviewer"))
    assert other.get(f"/media/{members[0].pk}/preview/thumb/").status_code == 404
    assert other.post(f"/media/{members[0].pk}/original/", {"mode": "hold"}).status_code == 404


def test_one_decision_applies_to_the_ticked_members_and_the_rest_go_back(rita, reviewer, cluster):
    rep, members = cluster
    _claim(rita, rep)
    look_via(rita, rep.pk)  # one reveal, of the representative
    ticked, unticked = members[:2], members[2:]
    response = _decide(rita, rep, members, ticked)
    assert response.status_code == 302
    # The next claim is an unticked member, now reviewed on its own.
    assert response["Location"] in {f"/review/{m.pk}/" for m in unticked}

    rep_decision = Decision.objects.get(item=rep)
    assert (rep_decision.verdict, rep_decision.classification, rep_decision.viewed_unblurred) == ("confirmed", "A1", True)
    for m in ticked:
        m.refresh_from_db()
        d = Decision.objects.get(item=m)
        assert (m.state, m.verdict) == (Item.State.DECIDED, "confirmed")
        assert d.cluster_decision_id == rep_decision.pk and d.reviewer == reviewer and d.classification == "A1"
        assert d.viewed_unblurred is False  # not itself painted: reported as not viewed
        assert file_viewed(standing_decision(m)) is False
        event = AuditEvent.objects.get(action="decision.recorded", item_id=m.pk)
        assert event.data["cluster_decision"] == rep_decision.pk and event.data["viewed_unblurred"] is False
    for m in unticked:
        m.refresh_from_db()
        assert (m.cluster_of_id, m.verdict) == (None, "")
        assert m.state in (Item.State.QUEUED, Item.State.CLAIMED)
        assert not Decision.objects.filter(item=m).exists()
        assert AuditEvent.objects.get(action="item.unclustered", item_id=m.pk).data["why"] == "unticked in the cluster decision"
    assert file_viewed(standing_decision(rep)) is True
    assert ViewEvent.objects.count() == 1
    # Decisions are immutable rows: one each, linked; the unticked ones are claimed next, on their own.
    assert Decision.objects.count() == 3
    assert rita.get("/").content.decode().count('id="looks-avoided">2 ') == 1


def test_a_member_revealed_is_reported_as_viewed(rita, cluster):
    rep, members = cluster
    _claim(rita, rep)
    look_via(rita, members[1].pk)  # the reviewer chose to look at a member instead
    response = _decide(rita, rep, members, members)
    assert response.status_code == 302
    assert Decision.objects.get(item=rep).viewed_unblurred is False
    assert [Decision.objects.get(item=m).viewed_unblurred for m in members] == [False, True, False, False]
    view = ViewEvent.objects.get()
    assert view.item_id == members[1].pk and view.claim.item_id == rep.pk


def test_confirming_a_cluster_needs_a_reveal_of_one_of_its_files(rita, cluster):
    rep, members = cluster
    _claim(rita, rep)
    response = _decide(rita, rep, members, members)
    assert response.status_code == 400
    assert "Reveal a file of this cluster" in response.content.decode()
    assert Decision.objects.count() == 0
    assert Item.objects.filter(state=Item.State.CLUSTERED).count() == 4


@pytest.mark.parametrize("bad,message", [("abc", "Members are item numbers."), ("999999", "No longer waiting in this cluster")])
def test_a_bad_member_is_refused_and_nothing_is_stored(rita, cluster, bad, message):
    rep, members = cluster
    _claim(rita, rep)
    look_via(rita, rep.pk)
    response = rita.post(f"/review/{rep.pk}/decide/", {"verdict": "confirmed", "classification": "A1",
                                                        "cluster": ",".join(str(m.pk) for m in members),
                                                        "members": [str(members[0].pk), bad]})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Decision.objects.count() == 0
    assert not AuditEvent.objects.filter(action__in=["decision.recorded", "item.unclustered"]).exists()
    # The page drawn again keeps the reviewer's ticks.
    assert f'value="{members[0].pk}" form="decision" class="member-tick" checked' in response.content.decode()


def test_a_member_is_decided_through_its_cluster_only(rita, cluster):
    rep, members = cluster
    _claim(rita, rep)
    assert rita.post(f"/review/{members[0].pk}/decide/", {"verdict": "not_csam", "reason": "benign"}).status_code == 404
    assert rita.post(f"/review/{members[0].pk}/skip/").status_code == 404


def test_a_not_csam_cluster_decision_needs_no_reveal(rita, cluster):
    rep, members = cluster
    _claim(rita, rep)
    response = _decide(rita, rep, members, members[1:], verdict="not_csam", reason="benign", classification="")
    assert response.status_code == 302
    assert Decision.objects.filter(verdict="not_csam").count() == 4
    assert Item.objects.get(pk=members[0].pk).state in (Item.State.QUEUED, Item.State.CLAIMED)
    assert Item.objects.get(pk=members[0].pk).cluster_of_id is None


def test_a_lead_splits_a_wrong_member_off(lena, rita, cluster):
    rep, members = cluster
    page = lena.get(f"/lead/items/{rep.pk}/").content.decode()
    assert "Near-duplicates waiting with it (4)" in page
    assert lena.post(f"/lead/items/{rep.pk}/split/", {"members": [str(members[3].pk)]}).status_code == 302
    m = Item.objects.get(pk=members[3].pk)
    assert (m.state, m.cluster_of_id) == (Item.State.QUEUED, None)
    event = AuditEvent.objects.get(action="item.unclustered", item_id=m.pk)
    assert event.actor_name == "lena" and event.data["why"] == "split off by a lead"
    # A stranger to the cluster, or no choice at all: refused, nothing changes.
    assert lena.post(f"/lead/items/{rep.pk}/split/", {"members": [str(members[3].pk)]}).status_code == 400
    assert lena.post(f"/lead/items/{rep.pk}/split/", {}).status_code == 400
    assert lena.post(f"/lead/items/{rep.pk}/split/", {"members": ["x"]}).status_code == 400
    assert AuditEvent.objects.filter(action="item.unclustered").count() == 1
    # Reviewers may not split.
    assert rita.post(f"/lead/items/{rep.pk}/split/", {"members": [str(members[0].pk)]}).status_code == 404
    assert Item.objects.get(pk=members[0].pk).state == Item.State.CLUSTERED


def test_a_scanner_sees_a_clustered_push_as_queued(api, django_capture_on_commit_callbacks):
    from devtools.synthetic import synthetic_image, synthetic_variant

    from .factories import make_metadata

    with django_capture_on_commit_callbacks(execute=True):  # the preview task runs in-process
        assert push(api, synthetic_image(SEED, size=(320, 240)), make_metadata("a")).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        copy = push(api, synthetic_variant(synthetic_image(SEED, size=(320, 240)), "reencode", amount=40), make_metadata("b"))
    assert copy.status_code == 201
    assert Item.objects.get(sha256=copy.json()["item"]).state == Item.State.CLUSTERED
    assert api.get(f"/api/v1/submissions/{copy.json()['id']}").json()["status"] == "queued"
