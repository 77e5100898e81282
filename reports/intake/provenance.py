"""Submission metadata: strict validation, merging later provenance, and what a report lacks.

Validation is strict on purpose: an unknown field, a number where a string belongs or a
timestamp without a zone is an integration bug the scanner should hear about, not a guess.
"""

import re

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

# ai_training_data: a dataset gathered to train or evaluate models; model_output: made by the
# company's own generative model. third_party_dataset stays for other datasets.
SOURCE_TYPES = ["user_upload", "storage_scan", "web_crawl", "third_party_dataset", "ai_training_data", "model_output",
                "other"]
# vpdq and tmk_pdqf: Meta's video hashes; their values are taken as the scanner sends them.
HASH_TYPES = ["md5", "sha1", "sha256", "pdq", "vpdq", "tmk_pdqf", "photodna"]
HASH_FORMATS = {
    "md5": re.compile(r"^[0-9a-f]{32}$"),
    "sha1": re.compile(r"^[0-9a-f]{40}$"),
    "sha256": re.compile(r"^[0-9a-f]{64}$"),
    "pdq": re.compile(r"^[0-9a-f]{64}$"),
}
OTHER_HASH = re.compile(r"^other:[a-z0-9][a-z0-9_.-]{0,31}$")
IP_EVENTS = ["Login", "Registration", "Purchase", "Upload", "Other", "Unknown"]
MAX_SKEW = timezone.timedelta(days=1)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class ZonedDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone, not in the future; kept as the string the scanner sent."""

    default_error_messages = {"zone": "Include a time zone, e.g. 2026-11-20T12:00:00Z.", "future": "Is in the future."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", format="ISO 8601")
        parsed = super().to_internal_value(data)
        if not re.search(r"(Z|[+-]\d\d:?\d\d)$", data.strip()):
            self.fail("zone")
        if parsed > timezone.now() + MAX_SKEW:
            self.fail("future")
        return parsed


class WebUrlField(serializers.URLField):
    def __init__(self, **kwargs):
        super().__init__(max_length=2083, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not value.lower().startswith(("http://", "https://")):
            self.fail("invalid")
        return value


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, naming them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def optional(field_class, **kwargs):
    return field_class(required=False, allow_null=True, **kwargs)


class MatchInput(StrictSerializer):
    hash_type = StrictCharField(max_length=40)
    hash_value = StrictCharField(max_length=512)
    list = StrictCharField(max_length=100)
    list_entry_id = optional(StrictCharField, max_length=200, allow_blank=True)
    distance = optional(StrictFloatField, min_value=0)
    threshold = optional(StrictFloatField, min_value=0)
    label = optional(StrictCharField, max_length=40, allow_blank=True)

    def validate_hash_type(self, value):
        if value not in HASH_TYPES and not OTHER_HASH.match(value):
            raise serializers.ValidationError(f"Must be one of {', '.join(HASH_TYPES)} or other:<name>.")
        return value

    def validate(self, attrs):
        pattern = HASH_FORMATS.get(attrs["hash_type"])
        if pattern and not pattern.match(attrs["hash_value"].lower()):
            raise serializers.ValidationError({"hash_value": [f"Not a {attrs['hash_type']} hash in hex."]})
        return attrs


class DatasetInput(StrictSerializer):
    """A dataset the file was found in (third_party_dataset, ai_training_data): said in the
    file's additionalInfo, the report's additionalInfo and incidentDateTimeDescription."""

    name = optional(StrictCharField, max_length=200)
    vendor = optional(StrictCharField, max_length=200)
    vendor_source = optional(StrictCharField, max_length=1000, help_text="How (from where) the vendor obtained the data.")
    version = optional(StrictCharField, max_length=100)
    record_id = optional(StrictCharField, max_length=300)
    acquired_by = optional(StrictCharField, max_length=200, help_text="Who acquired the dataset from the vendor "
                                                                      "(a team or company).")
    acquired_at = optional(ZonedDateTimeField, help_text="When the dataset was acquired from the vendor.")


class GenerationInput(StrictSerializer):
    """model_output: the company's own generative model made the file. Said in the file's and
    the report's additionalInfo; the file is marked fileAnnotations/generativeAi."""

    model_name = optional(StrictCharField, max_length=200)
    model_version = optional(StrictCharField, max_length=100)
    generated_at = optional(ZonedDateTimeField, help_text="When the model produced the file (incidentDateTime).")
    request_id = optional(StrictCharField, max_length=300)
    session_id = optional(StrictCharField, max_length=300)
    user_prompt = optional(StrictBooleanField, help_text="Whether a user's prompt was involved.")


class IpEventInput(StrictSerializer):
    ip = serializers.IPAddressField()
    event = serializers.ChoiceField(choices=IP_EVENTS)
    at = optional(ZonedDateTimeField)
    port = optional(StrictIntegerField, min_value=1, max_value=65535)


class DeviceIdInput(StrictSerializer):
    type = StrictCharField(max_length=100)
    value = StrictCharField(max_length=300)


class UploaderInput(StrictSerializer):
    esp_identifier = optional(StrictCharField, max_length=300)
    screen_name = optional(StrictCharField, max_length=256)
    email = optional(serializers.EmailField, max_length=254)
    profile_url = optional(WebUrlField)
    ip_events = IpEventInput(many=True, required=False, max_length=100)
    device_ids = DeviceIdInput(many=True, required=False, max_length=100)


class ProvenanceInput(StrictSerializer):
    source_type = serializers.ChoiceField(choices=SOURCE_TYPES, help_text=(
        "user_upload, storage_scan, web_crawl, third_party_dataset (a dataset that is not AI training data), "
        "ai_training_data (a dataset gathered to train or evaluate models: give `dataset`), model_output (made by "
        "our own generative model: give `generation`), other. Each is stated in incidentSummary/platform, "
        "incidentDateTimeDescription and the report's and the file's additionalInfo; see docs/reports.md."))
    platform = optional(StrictCharField, max_length=256, help_text="incidentSummary/platform (with the source's note).")
    dataset = DatasetInput(required=False, allow_null=True, help_text="fileDetails/additionalInfo and the report's "
                                                                      "additionalInfo.")
    location_url = optional(WebUrlField, help_text="fileDetails/locationOfFile; internetDetails/webPageIncident/url when "
                                                   "there is no page_url.")
    page_url = optional(WebUrlField, help_text="internetDetails/webPageIncident/url (@thirdPartyHostedContent unless "
                                               "the host is ours).")
    collected_at = optional(ZonedDateTimeField, help_text="incidentSummary/incidentDateTime (when nothing earlier is "
                                                          "known) and fileDetails/additionalInfo.")
    publicly_available = optional(StrictBooleanField, help_text="fileDetails/publiclyAvailable.")
    original_filename = optional(StrictCharField, max_length=2056, help_text="fileDetails/originalFileName.")
    uploaded_at = optional(ZonedDateTimeField, help_text="fileDetails/uploadedToEspTimestamp; incidentDateTime.")
    uploader = UploaderInput(required=False, allow_null=True, help_text="personOrUserReported; its Upload IP event also "
                                                                        "fileDetails/ipCaptureEvent.")
    generation = GenerationInput(required=False, allow_null=True, help_text="model_output: fileDetails/additionalInfo, "
                                                                            "the report's additionalInfo, incidentDateTime.")


class MetadataInput(StrictSerializer):
    external_id = StrictCharField(max_length=200)
    observed_at = ZonedDateTimeField()
    matches = MatchInput(many=True, min_length=1, max_length=100)
    provenance = ProvenanceInput()


def flatten_errors(detail, prefix=""):
    """DRF's nested errors as {"metadata.matches[0].hash_type": ["..."]}."""
    flat = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "non_field_errors":
                path = prefix or "non_field_errors"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
    elif isinstance(detail, list) and detail and all(isinstance(d, (dict, list)) for d in detail):
        for index, value in enumerate(detail):
            if value:
                flat.update(flatten_errors(value, f"{prefix}[{index}]"))
    else:
        messages = detail if isinstance(detail, list) else [detail]
        flat.setdefault(prefix, []).extend(str(m) for m in messages)
    return flat


def to_json(value):
    """Validated data as plain JSON: timestamps back to ISO strings."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value


def provenance_merge(current: dict, update: dict) -> dict:
    """Later provenance: given values replace, nulls never erase, lists gain new entries."""
    merged = dict(current)
    for key, value in update.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = provenance_merge(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        else:
            merged[key] = value
    return merged


def _present(provenance: dict, path: str) -> bool:
    if path == "uploader.ip_events.upload":
        events = (provenance.get("uploader") or {}).get("ip_events") or []
        return any(e.get("event") == "Upload" and e.get("at") for e in events)
    value = provenance
    for part in path.split("."):
        if not isinstance(value, dict):
            return False
        value = value.get(part)
    return value not in (None, "", [], {})


def provenance_missing(provenance: dict) -> list[str]:
    """The required fields (DESIGN §4 policy, a setting) this provenance lacks.

    Alternatives are named together: "location_url or page_url"."""
    policy = settings.TSREVIEW_PROVENANCE_REQUIRED.get(provenance.get("source_type"), [])
    missing = []
    for requirement in policy:
        options = (requirement,) if isinstance(requirement, str) else tuple(requirement)
        if not any(_present(provenance, option) for option in options):
            missing.append(" or ".join(options))
    return missing


# How each source type is said in a report (DESIGN §4: material that is not user content says
# so plainly). One fixed sentence per source type, used word for word in every place NCMEC
# reads: the platform's note, incidentDateTimeDescription and both additionalInfo texts.
SOURCE_STATEMENT = {
    "user_upload": "Uploaded by a user of our service.",
    "storage_scan": "Found in storage on our service.",
    "web_crawl": "Found by our crawler on the public web; not uploaded by a user of our service.",
    "third_party_dataset": "Found in a third-party dataset that we obtained from a vendor; not uploaded by a user of "
                           "our service.",
    "ai_training_data": "Found in AI training data: a dataset gathered to train or evaluate AI models; not uploaded "
                        "by a user of our service.",
    "model_output": "Generated by our own generative AI model; not uploaded by a user of our service.",
    "other": "Found outside our users' content.",
}
# The short form for incidentSummary/platform (which NCMEC limits to 256 characters).
SOURCE_PLATFORM = {
    "web_crawl": "web crawl, not user content",
    "third_party_dataset": "third-party dataset, not user content",
    "ai_training_data": "AI training data, not user content",
    "model_output": "output of our own generative AI model, not user content",
    "other": "not user content",
}
# Kept for callers that read the old name: the statement without its full stop, lower-cased.
SOURCE_TEXT = {k: v[0].lower() + v[1:].rstrip(".") for k, v in SOURCE_STATEMENT.items()}


def uploader_identity(provenance: dict) -> dict:
    """The uploader's identifying fields that are present (esp_identifier, screen_name, ...)."""
    uploader = provenance.get("uploader") or {}
    return {k: uploader.get(k) for k in ("esp_identifier", "screen_name", "email", "profile_url") if uploader.get(k)}


def upload_event(provenance: dict, *, timed: bool = False) -> dict | None:
    """The uploader's first recorded "Upload" IP event (with a time, if `timed`), if any."""
    events = (provenance.get("uploader") or {}).get("ip_events") or []
    return next((e for e in events if e.get("event") == "Upload" and (e.get("at") or not timed)), None)


def dataset_text(dataset: dict) -> str:
    """The dataset in words: name, version, vendor, record, how the vendor got it, and who
    acquired it when (saying so when who or when was not given)."""
    facts = [f"{label} {dataset[key]}" for key, label in (
        ("name", "name"), ("version", "version"), ("vendor", "vendor"), ("record_id", "record"),
        ("vendor_source", "the vendor obtained it from")) if dataset.get(key)]
    if dataset.get("acquired_by") or dataset.get("acquired_at"):
        by = f"by {dataset['acquired_by']}" if dataset.get("acquired_by") else "(by whom was not given)"
        facts.append(f"acquired {by}" + (f" on {dataset['acquired_at']}" if dataset.get("acquired_at") else ""))
    return "Dataset: " + ", ".join(facts) + "."


def generation_text(generation: dict) -> str:
    """model_output in words: which model, when, for which request, and whether a user prompted it."""
    facts = [f"{label} {generation[key]}" for key, label in (
        ("model_name", "model"), ("model_version", "version"), ("generated_at", "generated at"),
        ("request_id", "request"), ("session_id", "session")) if generation.get(key)]
    if generation.get("user_prompt") is not None:
        facts.append("a user's prompt was involved" if generation["user_prompt"] else "no user prompt was involved")
    return "Generation: " + ", ".join(facts) + "."
