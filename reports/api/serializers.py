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


def _report_id(submission: Submission) -> int | None:
    """The NCMEC id of a finished report with this sighting or its item. Only a decided item
    can have been reported (drafts take confirmed decisions; an overturn leaves it decided), so
    pushes of undecided items skip the look-up; looked up once per answer."""
    if submission.item.state != Item.State.DECIDED:
        return None
    if not hasattr(submission, "_report_id"):
        submission._report_id = submission_report_id(submission)
    return submission._report_id


def first_own_sighting_at(submission: Submission):
    """When this scanner first pushed these bytes, and whether another scanner had pushed them
    before (then what happened to the item before that moment is not this scanner's to learn)."""
    if not submission.duplicate:  # this push made the item: the first sighting of all
        return submission.created_at, False
    sightings = Submission.objects.filter(item_id=submission.item_id)
    first_own = sightings.filter(scanner_id=submission.scanner_id).order_by("created_at").values_list(
        "created_at", flat=True).first() or submission.created_at
    foreign = sightings.filter(created_at__lt=first_own).exclude(scanner_id=submission.scanner_id).exists()
    return first_own, foreign


def submission_status(submission: Submission, *, just_pushed: bool = False) -> str:
    """The scanner's view of where its push is (DESIGN §3). A scanner that pushes bytes another
    scanner pushed first learns nothing of the other's push: its push is answered as a first
    push ("received": previews are made after the answer), then the item is "queued" for it
    until a decision made after its own first push, or until its own sighting is reported."""
    item = submission.item
    first_own, foreign = first_own_sighting_at(submission)
    if foreign and not (item.decided_at and item.decided_at > first_own):
        if just_pushed:
            return "received"
        return "reported" if submission_report_id(submission) else "queued"
    if item.state == Item.State.NEW:
        return "received"
    if item.state in (Item.State.QUEUED, Item.State.CLUSTERED):  # waiting alone, or with its near-duplicates
        return "queued"
    if item.state == Item.State.DECIDED and item.verdict == Item.Verdict.CONFIRMED:
        return "reported" if _report_id(submission) else "confirmed"
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


_datetime = serializers.DateTimeField().to_representation  # ISO 8601 in the current zone, UTC as "Z"


class SubmissionOutput(serializers.Serializer):
    """The declared fields are the answer's schema (OpenAPI) and DRF's reading of it;
    to_representation builds the same answer directly."""

    id = serializers.UUIDField()
    external_id = serializers.CharField()
    item = serializers.CharField(source="item.sha256", help_text="SHA-256 of the media bytes.")
    duplicate = serializers.SerializerMethodField(help_text="This scanner had submitted the same bytes before.")
    status = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()
    provenance_missing = serializers.SerializerMethodField()
    observed_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    matches = MatchOutput(many=True)
    provenance = serializers.JSONField()

    def to_representation(self, submission):
        """Field by field what the declared fields give (tests/test_api_output.py holds the two
        equal, in key order), without DRF's deep copy of every declared field, nested ones
        included, for each answer: about a millisecond of every push."""
        return {
            "id": str(submission.id),
            "external_id": str(submission.external_id),
            "item": str(submission.item.sha256),
            "duplicate": self.get_duplicate(submission),
            "status": self.get_status(submission),
            "report": self.get_report(submission),
            "provenance_missing": self.get_provenance_missing(submission),
            "observed_at": None if submission.observed_at is None else _datetime(submission.observed_at),
            "created_at": None if submission.created_at is None else _datetime(submission.created_at),
            "matches": [{"hash_type": str(match.hash_type), "hash_value": str(match.hash_value),
                         "list": str(match.list_name), "list_entry_id": str(match.list_entry_id),
                         "distance": None if match.distance is None else float(match.distance),
                         "threshold": None if match.threshold is None else float(match.threshold),
                         "label": str(match.label)} for match in submission.matches.all()],
            "provenance": submission.provenance,
        }

    @extend_schema_field(serializers.BooleanField())
    def get_duplicate(self, submission):
        """Only this scanner's own earlier push of the same bytes makes a duplicate: another
        scanner's is not this scanner's to learn."""
        return submission.duplicate and Submission.objects.filter(
            item_id=submission.item_id, scanner_id=submission.scanner_id,
            created_at__lte=submission.created_at).exclude(pk=submission.pk).exists()

    @extend_schema_field(serializers.ChoiceField(
        choices=["received", "queued", "in_review", "confirmed", "not_confirmed", "reported"]))
    def get_status(self, submission):
        return submission_status(submission, just_pushed=self.context.get("just_pushed", False))

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="NCMEC report id once filed."))
    def get_report(self, submission):
        report_id = _report_id(submission)
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
