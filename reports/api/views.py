"""Scanner API v1 (DESIGN §3): one view per operation: parse, access helper, one operation."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.uploadhandler import MemoryFileUploadHandler
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from ..access import submission_for_scanner
from ..errors import Refused
from ..feedback import webhooks
from ..intake import submission as intake
from ..intake.jsontext import TooDeep, json_loads_limited, text_errors
from ..intake.media import MediaRejected
from ..intake.provenance import ProvenanceInput, flatten_errors
from ..intake.upload import EncryptingUploadHandler
from .errors import ApiError
from .parsers import LimitedJSONParser
from .serializers import ERROR_RESPONSES, EventPage, SubmissionOutput, SubmissionUpload

METADATA_MAX_BYTES = 256 * 1024


def _read_metadata(request):
    """The metadata part as a parsed JSON document (intake checks its contents)."""
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
        return json_loads_limited(raw)
    except TooDeep as exc:
        raise serializers.ValidationError({"metadata": [str(exc)]}) from None
    except ValueError as exc:
        raise serializers.ValidationError({"metadata": [f"Not valid JSON: {exc.msg} at line {exc.lineno}."]}) from None


def _body_limit() -> int:
    return max(settings.TSREVIEW_MAX_UPLOAD_BYTES, settings.TSREVIEW_MAX_VIDEO_BYTES) + METADATA_MAX_BYTES + 64 * 1024


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
        if length > _body_limit():
            raise ApiError(413, "file", f"Request body larger than the {_body_limit()}-byte limit.")
        # The file part streams, hashed and encrypted, into the media store as it arrives; what a
        # refused push wrote is removed below. Other parts (the metadata) are read in memory.
        receiver = EncryptingUploadHandler(request._request)
        request._request.upload_handlers = [receiver, MemoryFileUploadHandler(request._request)]
        try:
            result = self._push(request)
        finally:
            for upload in receiver.uploads:
                upload.discard()
        # The scanner's own submission, just made or replayed (intake found it by scanner).
        return Response(SubmissionOutput(result.submission, context={"just_pushed": result.created}).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @staticmethod
    def _push(request):
        try:
            document = _read_metadata(request)
            upload = request.FILES.get("file")
        except (RequestDataTooBig, TooManyFieldsSent):
            raise ApiError(413, "metadata", "Too large.") from None
        try:
            return intake.submission_push(scanner=request.user, document=document, data=upload,
                                          claimed_type=upload.content_type or "" if upload else "")
        except MediaRejected as exc:
            raise ApiError(exc.status, "file", exc.message) from None
        except intake.ExternalIdConflict:
            raise ApiError(409, "metadata.external_id", "Already used by this scanner for different bytes.") from None


class SubmissionDetailApi(APIView):
    throttle_scope = "scanner"

    @extend_schema(operation_id="submission_get", responses={200: SubmissionOutput, **{c: ERROR_RESPONSES[c] for c in (401, 404, 503)}})
    def get(self, request, submission_id):
        return Response(SubmissionOutput(submission_for_scanner(request.user, submission_id)).data)


class SubmissionProvenanceApi(APIView):
    throttle_scope = "scanner"
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        operation_id="submission_provenance_update",
        request=ProvenanceInput(partial=True),
        responses={200: SubmissionOutput, **{c: ERROR_RESPONSES[c] for c in (400, 401, 404, 415, 503)}},
        description="Merge more provenance: given fields replace, nulls never erase, lists gain entries.",
    )
    def patch(self, request, submission_id):
        submission = submission_for_scanner(request.user, submission_id)
        if not isinstance(request.data, dict) or not request.data:
            raise serializers.ValidationError({"body": ["Send a JSON object with at least one provenance field."]})
        unsafe = text_errors(request.data)  # nesting limit; text a report (XML) could not carry
        if unsafe:
            raise Refused(unsafe)
        validator = ProvenanceInput(data=request.data, partial=True)
        if not validator.is_valid():
            raise serializers.ValidationError(flatten_errors(validator.errors))
        intake.submission_provenance_update(scanner=request.user, submission=submission, update=validator.validated_data)
        return Response(SubmissionOutput(submission_for_scanner(request.user, submission_id)).data)


class EventListApi(APIView):
    """Pull: the scanner's events after the one it last saw, for when its endpoint was down."""

    throttle_scope = "scanner"

    @extend_schema(
        operation_id="event_list",
        parameters=[OpenApiParameter("after", str, description="The id of the last event you have; omit for the first."),
                    OpenApiParameter("limit", int, description="At most this many (1 to 500, default 100).")],
        responses={200: EventPage, **{c: ERROR_RESPONSES[c] for c in (400, 401, 429, 503)}},
        description="Events about this scanner's submissions, oldest first: the same bodies the webhooks carry "
                    "(see docs/webhooks.md). No media and no reviewer identity.",
    )
    def get(self, request):
        try:
            limit = int(request.query_params.get("limit", 100))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            raise serializers.ValidationError({"limit": ["A whole number from 1 to 500."]})
        try:
            events = webhooks.events_after(scanner=request.user, after=request.query_params.get("after"), limit=limit + 1)
        except Refused as exc:
            raise serializers.ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        page = events[:limit]
        return Response({"events": [json.loads(e.body) for e in page], "next": page[-1].event_id if page else None,
                         "has_more": len(events) > limit})
