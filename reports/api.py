"""Scanner API v1 (DESIGN §3): one view per operation, explicit input and output serializers."""

import json
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import intake
from .api_errors import ApiError
from .media import MediaRejected, image_inspect
from .models import Item, Submission
from .provenance import MetadataInput, ProvenanceInput, flatten_errors, provenance_missing
from .reporting import submission_report_id

METADATA_MAX_BYTES = 256 * 1024
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
        413: "The body, the image's pixels or its frames are over the limit.",
        415: "Not a supported image, or not the type it was sent as.",
        429: "Rate limited.",
        503: "The database is unavailable; nothing was stored. Retry after the Retry-After seconds.",
    }.items()
}


def submission_status(submission: Submission) -> str:
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

    file = serializers.FileField(help_text="The media bytes: JPEG, PNG, GIF or WebP.")
    metadata = MetadataInput(help_text="A JSON document: matches and provenance.")


def _own_submission(request, submission_id: str) -> Submission:
    """The scanner's own submission; another scanner's and a missing one are both 404."""
    try:
        key = uuid.UUID(submission_id)
    except ValueError:
        raise Http404 from None
    queryset = Submission.objects.select_related("item").prefetch_related("matches")
    try:
        return queryset.get(pk=key, scanner=request.user)
    except Submission.DoesNotExist:
        raise Http404 from None


def _read_metadata(request) -> dict:
    if "metadata" in request.FILES:  # sent as a file part (curl -F metadata=@meta.json)
        part = request.FILES["metadata"]
        if part.size > METADATA_MAX_BYTES:
            raise ApiError(413, "metadata", f"Larger than {METADATA_MAX_BYTES} bytes.")
        raw = part.read().decode("utf-8", errors="replace")
    elif "metadata" in request.data:
        raw = request.data["metadata"]
    else:
        raise serializers.ValidationError({"metadata": ["This part is required."]})
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise serializers.ValidationError({"metadata": [f"Not valid JSON: {exc.msg} at line {exc.lineno}."]}) from None
    if not isinstance(document, dict):
        raise serializers.ValidationError({"metadata": ["Must be a JSON object."]})
    validator = MetadataInput(data=document)
    if not validator.is_valid():
        raise serializers.ValidationError(flatten_errors(validator.errors, "metadata"))
    return validator.validated_data


def _read_file(request) -> tuple[bytes, str]:
    upload = request.FILES.get("file")
    if upload is None:
        raise serializers.ValidationError({"file": ["This part is required."]})
    if upload.size > settings.TSREVIEW_MAX_UPLOAD_BYTES:
        raise ApiError(413, "file", f"Larger than {settings.TSREVIEW_MAX_UPLOAD_BYTES} bytes.")
    return upload.read(), upload.content_type or ""


class SubmissionCreateApi(APIView):
    parser_classes = [MultiPartParser]
    throttle_scope = "scanner"

    @extend_schema(
        operation_id="submission_create",
        request={"multipart/form-data": SubmissionUpload},
        responses={201: SubmissionOutput, 200: SubmissionOutput, **ERROR_RESPONSES},
        description="Push one hash-matched file. A replay of the same external_id answers 200 with the same submission.",
    )
    def post(self, request):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.TSREVIEW_MAX_UPLOAD_BYTES + METADATA_MAX_BYTES + 64 * 1024:
            raise ApiError(413, "file", f"Request body larger than the {settings.TSREVIEW_MAX_UPLOAD_BYTES}-byte file limit.")
        try:
            metadata = _read_metadata(request)
            data, claimed_type = _read_file(request)
        except (RequestDataTooBig, TooManyFieldsSent):
            raise ApiError(413, "metadata", "Too large.") from None
        try:
            facts = image_inspect(data, claimed_type=claimed_type)
        except MediaRejected as exc:
            raise ApiError(exc.status, "file", exc.message) from None
        try:
            result = intake.submission_create(scanner=request.user, metadata=metadata, data=data, facts=facts)
        except intake.ExternalIdConflict:
            raise ApiError(409, "metadata.external_id", "Already used by this scanner for different bytes.") from None
        submission = _own_submission(request, str(result.submission.pk))
        return Response(SubmissionOutput(submission).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class SubmissionDetailApi(APIView):
    throttle_scope = "scanner"
    @extend_schema(operation_id="submission_get", responses={200: SubmissionOutput, **{c: ERROR_RESPONSES[c] for c in (401, 404, 503)}})
    def get(self, request, submission_id):
        return Response(SubmissionOutput(_own_submission(request, submission_id)).data)


class SubmissionProvenanceApi(APIView):
    throttle_scope = "scanner"
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="submission_provenance_update",
        request=ProvenanceInput(partial=True),
        responses={200: SubmissionOutput, **{c: ERROR_RESPONSES[c] for c in (400, 401, 404, 415, 503)}},
        description="Merge more provenance: given fields replace, nulls never erase, lists gain entries.",
    )
    def patch(self, request, submission_id):
        submission = _own_submission(request, submission_id)
        if not isinstance(request.data, dict) or not request.data:
            raise serializers.ValidationError({"body": ["Send a JSON object with at least one provenance field."]})
        validator = ProvenanceInput(data=request.data, partial=True)
        if not validator.is_valid():
            raise serializers.ValidationError(flatten_errors(validator.errors))
        intake.submission_provenance_update(scanner=request.user, submission=submission, update=validator.validated_data)
        return Response(SubmissionOutput(_own_submission(request, submission_id)).data)
