"""The scanner API's answer is built directly (SubmissionOutput.to_representation) and must be
what DRF makes of the declared fields, which are the published schema: same keys in the same
order, same values, same JSON types."""

import json

import pytest
from rest_framework import serializers

from reports.api.serializers import SubmissionOutput
from reports.models import Match, Scanner, Submission

from .factories import make_confirmed, make_metadata, make_scanner, push

pytestmark = pytest.mark.django_db


def _both(submission, **context):
    fast = SubmissionOutput(submission, context=context).data
    declared = serializers.Serializer.to_representation(SubmissionOutput(submission, context=context), submission)
    return fast, declared


def _same(submission, **context):
    fast, declared = _both(submission, **context)
    assert list(fast) == list(declared)
    assert json.dumps(fast) == json.dumps(declared)  # 12 and 12.0 are equal in Python, not in JSON
    return fast


def test_the_answer_is_what_the_declared_fields_give_for_every_kind_of_submission(api, scanner_token, reviewer):
    metadata = make_metadata("out/1", matches=[
        {"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": "1", "distance": 12, "threshold": 31, "label": "A1"},
        {"hash_type": "md5", "hash_value": "ab" * 16, "list": "Own", "list_entry_id": "", "label": ""},
        {"hash_type": "pdq", "hash_value": "0f" * 32, "list": "Other", "list_entry_id": "x", "distance": 3.5, "threshold": 31.25, "label": "B"}])
    assert push(api, metadata=metadata, seed=11).status_code == 201
    first = Submission.objects.get(external_id="out/1")
    answer = _same(first, just_pushed=True)
    assert answer["duplicate"] is False and answer["status"] == "received"
    assert [m["distance"] for m in answer["matches"]] == [12.0, None, 3.5]
    assert isinstance(answer["matches"][0]["distance"], float)
    assert answer["observed_at"] == "2026-11-20T12:00:00Z" and answer["id"] == str(first.id)

    assert push(api, metadata=make_metadata("out/2"), seed=11).status_code == 201  # the same bytes again
    again = Submission.objects.get(external_id="out/2")
    assert _same(again)["duplicate"] is True

    make_scanner("someone-else")  # another scanner's push of those bytes is not a duplicate for it
    other = Submission.objects.create(scanner=Scanner.objects.get(name="someone-else"), item=first.item, external_id="o/1",
                                      duplicate=True, observed_at=first.observed_at, provenance={})
    assert _same(other)["duplicate"] is False
    assert Match.objects.filter(submission=other).count() == 0 and _same(other)["matches"] == []

    confirmed = make_confirmed(12, reviewer).submissions.get()
    assert _same(confirmed)["status"] == "confirmed"


def test_the_comparison_catches_a_difference(api):
    """The check above can fail: a fast answer that gave an int where DRF gives a float differs."""
    assert push(api, seed=13).status_code == 201
    submission = Submission.objects.get()
    fast, declared = _both(submission)
    fast["matches"][0]["distance"] = int(fast["matches"][0]["distance"])
    assert fast == declared and json.dumps(fast) != json.dumps(declared)
