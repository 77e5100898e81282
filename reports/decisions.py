"""Decisions: immutable verdicts; where an item goes next (decided, QA, a lead)."""

import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .models import Claim, Decision, Item, ViewEvent
from .queue import claim_end, lock_unreported_views
from .wellness import exposure_add

# The CyberTipline schema's fileAnnotations a reviewer may set on a confirmed file.
ANNOTATIONS = {
    "generativeAi": "Generative AI",
    "animeDrawingVirtualHentai": "Anime, drawing or virtual",
    "potentialMeme": "Potential meme",
    "viral": "Viral",
    "possibleSelfProduction": "Possible self-production",
    "physicalHarm": "Physical harm",
    "violenceGore": "Violence or gore",
    "bestiality": "Bestiality",
    "liveStreaming": "Live streaming",
    "infant": "Infant",
}


class DecisionInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def _validate(verdict, classification, reason, annotations, note, stage) -> None:
    errors = {}
    if verdict not in Decision.Verdict.values:
        errors["verdict"] = "Choose confirm, not apparent CSAM, or escalate."
    elif verdict == Decision.Verdict.CONFIRMED and classification not in ("A1", "A2", "B1", "B2"):
        errors["classification"] = "A confirmation needs a classification (A1, A2, B1 or B2)."
    elif verdict == Decision.Verdict.NOT_CSAM and reason not in ("adult", "benign", "not_a_match", "unreadable"):
        errors["reason"] = "Say why: adult, benign, not a match, or unreadable."
    elif verdict == Decision.Verdict.ESCALATED and not note.strip():
        errors["note"] = "Say what you are unsure about, for the lead."
    elif verdict == Decision.Verdict.ESCALATED and stage == Claim.Stage.LEAD:
        errors["verdict"] = "A lead decides: confirm or not apparent CSAM."
    unknown = set(annotations) - set(ANNOTATIONS)
    if unknown:
        errors["annotations"] = f"Unknown annotations: {', '.join(sorted(unknown))}."
    if errors:
        raise DecisionInvalid(errors)


def _next_state(claim: Claim, verdict: str) -> str:
    """Review → QA for a sample; QA disagreement → a lead; a lead's word is final."""
    if verdict == Decision.Verdict.ESCALATED:
        return Item.State.ESCALATED
    if claim.stage == Claim.Stage.REVIEW:
        sampled = secrets.randbelow(100) < settings.TSREVIEW_QA_SAMPLE_PERCENT
        return Item.State.QA if sampled else Item.State.DECIDED
    if claim.stage == Claim.Stage.QA:
        first = Decision.objects.filter(item=claim.item_id, stage=Claim.Stage.REVIEW).order_by("-decided_at").first()
        if first and first.verdict != Decision.Verdict.ESCALATED and first.verdict != verdict:
            return Item.State.ESCALATED
    return Item.State.DECIDED


def decision_record(*, user, claim: Claim, verdict: str, classification: str = "", reason: str = "",
                    annotations=(), note: str = "") -> Decision:
    """Record a verdict on the item the user holds (the view checked the claim is theirs).

    A confirmation needs a recorded reveal of that file by this person (setting
    TSREVIEW_REQUIRE_VIEW_TO_CONFIRM). Ends the claim. Audited: decision.recorded and the
    item's new state."""
    _validate(verdict, classification, reason, list(annotations), note, claim.stage)
    viewed = ViewEvent.objects.filter(item_id=claim.item_id, user=user).exists()
    if verdict == Decision.Verdict.CONFIRMED and settings.TSREVIEW_REQUIRE_VIEW_TO_CONFIRM and not viewed:
        raise DecisionInvalid({"verdict": "Reveal the file before confirming it: a confirmation needs a recorded view."})
    with transaction.atomic():
        claim = Claim.objects.select_for_update(no_key=True).select_related("item").get(pk=claim.pk)
        if claim.end != Claim.End.OPEN or claim.user_id != user.pk:
            raise DecisionInvalid({"claim": "This item is no longer yours to decide; its lease ended."})
        lock_unreported_views(claim)  # before the audit head: the order every writer keeps
        now = timezone.now()
        decision = Decision.objects.create(
            item=claim.item, reviewer=user, reviewer_name=user.get_username(), claim=claim, stage=claim.stage,
            verdict=verdict, reason=reason if verdict == Decision.Verdict.NOT_CSAM else "",
            classification=classification if verdict == Decision.Verdict.CONFIRMED else "",
            annotations=sorted(annotations) if verdict == Decision.Verdict.CONFIRMED else [],
            note=note.strip(), viewed_unblurred=viewed, started_at=claim.started_at, decided_at=now)
        state = _next_state(claim, verdict)
        _item_settle(claim.item, decision, state, now)
        audit_record(actor=user, action="decision.recorded", subject=decision, item_id=claim.item_id,
                     data={"verdict": verdict, "classification": decision.classification, "reason": decision.reason,
                           "annotations": decision.annotations, "viewed_unblurred": viewed, "stage": claim.stage,
                           "item_state": state})
        claim_end(claim=claim, end=Claim.End.DECIDED, item_state=state)
        exposure_add(user, items=1)
    return decision


def _item_settle(item: Item, decision: Decision, state: str, now) -> None:
    fields = {"state": state}
    if decision.verdict != Decision.Verdict.ESCALATED:
        fields.update(verdict=decision.verdict, decided_at=now)
    if state in (Item.State.QA, Item.State.ESCALATED):
        fields["queued_at"] = now  # waits in its next queue from now
    Item.objects.filter(pk=item.pk).update(**fields)
