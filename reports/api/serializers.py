"""The scanner API's output serializers and documented error body (DESIGN §3)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from ..intake.provenance import MetadataInput, provenance_missing
from ..models import Item, Submission
from ..reporting.selectors import submission_report_id

# {"errors": {"<field>": ["<reason>", ...]}}, as api_errors.exception_handler writes it.
ERROR_BODY = {
    "type": "object",
    "required": ["errors"],
    "additionalProperties": False,
    "properties": {"errors": {"type": "object", "minProperties": 1,
                              "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}}}},
}
ERROR_RESPONSES = {
    code: OpenApiResponse(description=text, response=ERROR_BODY)
    for code, text in {
        400: "A named field is missing or wrong.",
        401: "No token, or an unknown one.",
        404: "Not this scanner's submission.",
        409: "external_id already used for other bytes.",
        413: "The body, the image's pixels or its frames, or a video's length, frame rate or streams are over the limit.",
        415: "Not a supported image or video, or not the type it was sent as.",
        429: "Rate limited.",
        503: "The database is unavailable; nothing was stored. Retry after the Retry-After seconds.",
    }.items()
}


def submission_status(submission: Submission) -> str:
    """The scanner's view of where its push is (DESIGN §3)."""
    item = submission.item
    if item.state == Item.State.NEW:
        return "received"
    if item.state == Item.State.QUEUED:
        return "queued"
    if item.state == Item.State.DECIDED and item.verdict == Item.Verdict.CONFIRMED:
        return "reported" if submission_report_id(submission) else "confirmed"
    if item.state == Item.State.DECIDED:
        return "not_confirmed"
    return "in_review"


class MatchOutput(serializers.Serializer):
    hash_type = serializers.CharField()
    hash_value = serializers.CharField()
    list = serializers.CharField(source="list_name")
    list_entry_id = serializers.CharField()
    distance = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    label = serializers.CharField()


class SubmissionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField()
    item = serializers.CharField(source="item.sha256", help_text="SHA-256 of the media bytes.")
    duplicate = serializers.BooleanField(help_text="The same bytes had been submitted before.")
    status = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()
    provenance_missing = serializers.SerializerMethodField()
    observed_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    matches = MatchOutput(many=True)
    provenance = serializers.JSONField()

    @extend_schema_field(serializers.ChoiceField(
        choices=["received", "queued", "in_review", "confirmed", "not_confirmed", "reported"]))
    def get_status(self, submission):
        return submission_status(submission)

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="NCMEC report id once filed."))
    def get_report(self, submission):
        report_id = submission_report_id(submission)
        return str(report_id) if report_id else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_provenance_missing(self, submission):
        return provenance_missing(submission.provenance)


class SubmissionUpload(serializers.Serializer):
    """The multipart body, for the schema: the view reads the parts itself."""

    file = serializers.FileField(help_text="The media bytes: JPEG, PNG, GIF or WebP; or a video: MP4/MOV or WebM/Matroska "
                                           "with H.264, HEVC, VP8, VP9 or AV1. The type is decided from the bytes.")
    metadata = MetadataInput(help_text="A JSON document: matches and provenance.")


class EventData(serializers.Serializer):
    submission = serializers.UUIDField()
    external_id = serializers.CharField()
    item = serializers.CharField(help_text="SHA-256 of the media bytes the scanner sent.")
    status = serializers.ChoiceField(choices=["queued", "confirmed", "not_confirmed", "reported", "retracted"])
    reason = serializers.ChoiceField(required=False, choices=["adult", "benign", "not_a_match", "unreadable"],
                                     help_text="not_confirmed only: the reason category.")
    report = serializers.CharField(required=False, help_text="reported and retracted: the NCMEC report id.")
    overturned = serializers.BooleanField(required=False, help_text="A lead replaced an earlier verdict.")


class EventOutput(serializers.Serializer):
    """One event, exactly as the webhook body that carried (or will carry) it."""

    id = serializers.CharField(help_text="Stable event id (the webhook-id header); deduplicate on it.")
    type = serializers.ChoiceField(choices=["submission.queued", "submission.confirmed", "submission.not_confirmed",
                                            "submission.reported", "submission.retracted"])
    timestamp = serializers.DateTimeField()
    data = EventData()


class EventPage(serializers.Serializer):
    events = EventOutput(many=True)
    next = serializers.CharField(allow_null=True, help_text="Pass as ?after= to read on; null when there were none.")
    has_more = serializers.BooleanField()
