"""Calibration of hash lists: how often a list's matches were confirmed on review, by list, hash
type and match distance; precision with a Wilson score interval; and the distance where
precision falls under the admin's target, as a suggested threshold.

Each match (a sighting's match against a list entry) counts once, with its item's outcome
(counted in the database, grouped by list, hash type and distance):
confirmed or not apparent CSAM (by reason) when the item is decided, unsure while it waits
for a lead after an escalation. Items not yet decided do not count. Precision is confirmed /
(confirmed + not apparent CSAM); unsure matches are shown but not in it.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q

from ..audit import audit_record
from ..models import Decision, FeedbackPolicy, Item, Match

REASONS = [r for r in Decision.Reason.values if r]
Z95 = 1.959963984540054  # the normal quantile for a two-sided 95 % interval
EXACT = {"md5", "sha1", "sha256"}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None for no trials."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bucket_of(hash_type: str, distance: float | None) -> tuple[float, float] | None:
    """[start, end) of the distance bucket; None when the scanner sent no distance. Exact hashes
    have one bucket, [0, 1)."""
    if distance is None:
        return None
    if hash_type in EXACT:
        return (0.0, 1.0)
    width = settings.TSREVIEW_CALIBRATION_BUCKET_WIDTH.get(hash_type, settings.TSREVIEW_CALIBRATION_BUCKET_WIDTH["*"])
    start = math.floor(distance / width) * width
    return (float(start), float(start + width))


@dataclass
class Tally:
    confirmed: int = 0
    not_csam: dict = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    unsure: int = 0

    def add(self, outcome: str, reason: str, n: int = 1) -> None:
        if outcome == "confirmed":
            self.confirmed += n
        elif outcome == "not_csam":
            self.not_csam[reason if reason in self.not_csam else REASONS[-1]] += n
        else:
            self.unsure += n

    @property
    def not_csam_total(self) -> int:
        return sum(self.not_csam.values())

    @property
    def decided(self) -> int:
        return self.confirmed + self.not_csam_total

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.decided if self.decided else None

    @property
    def interval(self):
        return wilson(self.confirmed, self.decided)

    def as_dict(self) -> dict:
        low_high = self.interval
        return {"confirmed": self.confirmed, "not_csam": self.not_csam_total, "not_csam_by_reason": dict(self.not_csam),
                "unsure": self.unsure, "decided": self.decided, "precision": self.precision,
                "precision_low": low_high[0] if low_high else None, "precision_high": low_high[1] if low_high else None}


def _outcome_counts(*group_by):
    """Counts of matches of decided (or escalated after a review) items, grouped in the database
    by `group_by` and the outcome: (*group values, outcome, reason, count)."""
    reviewed = Exists(Decision.objects.filter(item=OuterRef("submission__item")))
    rows = (Match.objects.filter(Q(submission__item__state=Item.State.DECIDED)
                                 | Q(reviewed, submission__item__state=Item.State.ESCALATED))
            .values_list(*group_by, "submission__item__state", "submission__item__verdict",
                         "submission__item__verdict_reason")
            .annotate(n=Count("id")).order_by())
    for *values, state, verdict, reason, n in rows:
        outcome = verdict if state == Item.State.DECIDED and verdict else "unsure"
        yield (*values, outcome, reason or "", n)


def suggested_threshold(buckets: list[dict], target: float) -> float | None:
    """The start of the first distance bucket (nearest first) whose precision is under the
    target: keep matches closer than this. None when no bucket with decisions falls under."""
    for bucket in buckets:
        if bucket["start"] is not None and bucket["precision"] is not None and bucket["precision"] < target:
            return bucket["start"]
    return None


def calibration() -> dict:
    """The whole calibration: per list and hash type, buckets by distance and a suggested
    threshold; per list entry with enough decisions, its own row."""
    policy = FeedbackPolicy.current()
    by_bucket = defaultdict(Tally)
    by_entry = defaultdict(Tally)
    for list_name, hash_type, distance, outcome, reason, n in _outcome_counts("list_name", "hash_type", "distance"):
        by_bucket[(list_name, hash_type, bucket_of(hash_type, distance))].add(outcome, reason, n)
    for list_name, entry, outcome, reason, n in _outcome_counts("list_name", "list_entry_id"):
        if entry:
            by_entry[(list_name, entry)].add(outcome, reason, n)
    lists = defaultdict(dict)
    for (list_name, hash_type, bucket), tally in sorted(by_bucket.items(), key=_bucket_order):
        group = lists[list_name].setdefault(hash_type, {"hash_type": hash_type, "buckets": []})
        group["buckets"].append({"start": bucket[0] if bucket else None, "end": bucket[1] if bucket else None,
                                 **tally.as_dict()})
    result = []
    for list_name in sorted(lists):
        groups = list(lists[list_name].values())
        for group in groups:
            group["suggested_threshold"] = suggested_threshold(group["buckets"], policy.target_precision)
        entries = [{"entry": entry, **tally.as_dict()} for (name, entry), tally in sorted(by_entry.items())
                   if name == list_name and tally.decided >= policy.entry_min_decisions]
        result.append({"list": list_name, "hash_types": groups, "entries": entries})
    return {"target_precision": policy.target_precision, "entry_min_decisions": policy.entry_min_decisions,
            "confidence": 0.95, "lists": result}


def _bucket_order(pair):
    (list_name, hash_type, bucket), _ = pair
    return list_name, hash_type, bucket is None, bucket or (0, 0)


CSV_COLUMNS = ["list", "hash_type", "entry", "distance_from", "distance_to", "confirmed", "not_csam",
               *[f"not_csam_{r}" for r in REASONS], "unsure", "precision", "precision_low_95", "precision_high_95",
               "suggested_threshold"]


def calibration_rows(data: dict):
    """The calibration flat, for CSV: bucket rows, then entry rows."""
    def numbers(row):
        return [row["confirmed"], row["not_csam"], *[row["not_csam_by_reason"][r] for r in REASONS], row["unsure"],
                _fmt(row["precision"]), _fmt(row["precision_low"]), _fmt(row["precision_high"])]

    for group in data["lists"]:
        for hashes in group["hash_types"]:
            for b in hashes["buckets"]:
                yield [group["list"], hashes["hash_type"], "", _fmt(b["start"]), _fmt(b["end"]), *numbers(b),
                       _fmt(hashes["suggested_threshold"])]
        for e in group["entries"]:
            yield [group["list"], "", e["entry"], "", "", *numbers(e), ""]


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def calibration_exported(*, actor, fmt: str) -> None:
    """Audited: calibration.exported (what was taken out of the system, by whom)."""
    with transaction.atomic():
        audit_record(actor=actor, action="calibration.exported", data={"format": fmt})
