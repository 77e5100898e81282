"""Decisions: immutable verdicts; where an item goes next (decided, QA, a lead).

The one place a Decision is created (a reviewer's verdict here, a lead's overturn through
leads.overturn), the one reveal-required rule and the one standing-decision query."""

import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..events import item_events, list_feedback_note
from ..intake.quarantine import entries_review
from ..intake.routing import rank_time
from ..models import Claim, Decision, Item, ScannerEvent
from ..states import item_move
from .clusters import cluster_exists, cluster_members_lock, member_requeue
from .queue import claim_close
from .reveal import painted_frames, played_segments, viewed_by, viewed_exists, views_lock_unreported
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


def decision_validate(*, verdict, classification="", reason="", annotations=(), note="", stage=Claim.Stage.REVIEW) -> None:
    """Refused unless the verdict carries what it needs (a classification, a reason, a note)."""
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
        raise Refused(errors)


def reveal_check(*, item, user, verdict: str, viewed: bool | None = None) -> bool:
    """The one reveal rule: a confirmation needs this person's painted view of this file
    (setting TSREVIEW_REQUIRE_VIEW_TO_CONFIRM). Returns whether they revealed it (`viewed`:
    the caller has read that already, as viewed_by would answer)."""
    viewed = viewed_by(item, user) if viewed is None else viewed
    if verdict == Decision.Verdict.CONFIRMED and settings.TSREVIEW_REQUIRE_VIEW_TO_CONFIRM and not viewed:
        raise Refused({"verdict": "Reveal the file before confirming it: a confirmation needs the original on screen for "
                                  f"at least {settings.TSREVIEW_MIN_VIEW_SECONDS:g} s."})
    return viewed


def decision_create(*, item: Item, user, stage: str, verdict: str, viewed: bool, classification="", reason="",
                    annotations=(), note="", claim: Claim | None = None, supersedes: Decision | None = None,
                    started_at=None, now=None, cluster_decision: Decision | None = None) -> Decision:
    """Insert the immutable row; the caller holds the transaction, has validated and audits."""
    now = now or timezone.now()
    confirmed = verdict == Decision.Verdict.CONFIRMED
    video = viewed and item.is_moving
    frames = painted_frames(item, user) if video else []
    segments = played_segments(item, user) if video else []
    return Decision.objects.create(
        item=item, reviewer=user, reviewer_name=user.get_username(), claim=claim, stage=stage, verdict=verdict,
        reason=reason if verdict == Decision.Verdict.NOT_CSAM else "",
        classification=classification if confirmed else "",
        annotations=sorted(annotations) if confirmed else [],
        note=note.strip(), viewed_unblurred=viewed, viewed_frames=frames,
        played_segments=segments, supersedes=supersedes, cluster_decision=cluster_decision,
        started_at=started_at or now, decided_at=now)


def _standing_queryset():
    return Decision.objects.exclude(verdict=Decision.Verdict.ESCALATED).order_by("-decided_at", "-id")


def standing_decisions_prefetch():
    """For a Prefetch(to_attr="standing_decisions") on items: their standing decision first."""
    return _standing_queryset()


def standing_decision(item: Item) -> Decision | None:
    """The item's standing verdict: its latest decision that is not an escalation."""
    if hasattr(item, "standing_decisions"):  # prefetched with standing_decisions_prefetch()
        return item.standing_decisions[0] if item.standing_decisions else None
    return _standing_queryset().filter(item=item).first()


def file_viewed(decision: Decision | None) -> bool:
    """fileViewedByEsp: true only when the reviewer whose confirmation stands revealed this file."""
    return bool(decision and decision.verdict == Decision.Verdict.CONFIRMED and decision.viewed_unblurred)


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
                    annotations=(), note: str = "", ticked=None) -> Decision:
    """Record a verdict on the item the user holds (the view checked the claim is theirs).

    A confirmation needs a painted view of that file by this person. Ends the claim.
    Audited: decision.recorded and the item's new state.

    A cluster (the item has near-duplicates waiting with it): the same verdict is applied to
    the members in `ticked` (ids), each getting its own Decision linked to this one
    (cluster_decision), with viewed_unblurred for that file alone; a confirmation then needs a
    painted view of the representative or of one ticked member. Members not ticked (and any
    that joined after the page was drawn) go back to the queue as their own items. Refused when
    a ticked id is not waiting in this cluster."""
    decision_validate(verdict=verdict, classification=classification, reason=reason, annotations=list(annotations),
                      note=note, stage=claim.stage)
    ticked_ids = {int(t) for t in ticked or ()}
    with transaction.atomic():
        claim = (Claim.objects.select_for_update(no_key=True).select_related("item")
                 .annotate(clustered=cluster_exists(OuterRef("item_id")), viewed=viewed_exists(OuterRef("item_id"), user))
                 .get(pk=claim.pk))
        if claim.end != Claim.End.OPEN or claim.user_id != user.pk:
            raise Refused({"claim": "This item is no longer yours to decide; its lease ended."})
        if not ticked_ids:
            viewed = reveal_check(item=claim.item_id, user=user, verdict=verdict, viewed=claim.viewed)
        views = views_lock_unreported(claim)  # the lock order every writer keeps: claim, views, items
        clustered = claim.clustered and claim.stage == Claim.Stage.REVIEW
        members = cluster_members_lock(claim.item_id) if clustered else []
        strangers = sorted(ticked_ids - {m.pk for m in members})
        if strangers:
            raise Refused({"members": "No longer waiting in this cluster (a lead split it, or it was decided): "
                                      f"{', '.join(map(str, strangers))}. Reload the page."})
        chosen = [m for m in members if m.pk in ticked_ids]
        if ticked_ids:
            viewed = claim.viewed
            seen = viewed or any(viewed_by(m, user) for m in chosen)
            if verdict == Decision.Verdict.CONFIRMED and settings.TSREVIEW_REQUIRE_VIEW_TO_CONFIRM and not seen:
                raise Refused({"verdict": "Reveal a file of this cluster before confirming it: a confirmation needs an "
                                          f"original on screen for at least {settings.TSREVIEW_MIN_VIEW_SECONDS:g} s."})
        now = timezone.now()
        decision = decision_create(item=claim.item, user=user, claim=claim, stage=claim.stage, verdict=verdict,
                                   classification=classification, reason=reason, annotations=annotations, note=note,
                                   viewed=viewed, started_at=claim.started_at, now=now)
        state = _item_settle(claim.item, decision, Item.State.CLAIMED, _next_state(claim, verdict), now)
        if state == Item.State.DECIDED:
            verdict_events(item_id=claim.item_id, decision=decision)
            entries_review(item_id=claim.item_id, verdict=decision.verdict)
        recorded = {"action": "decision.recorded", "subject": decision, "item_id": claim.item_id,
                    "data": {"verdict": verdict, "classification": decision.classification, "reason": decision.reason,
                             "annotations": decision.annotations, "viewed_unblurred": viewed, "stage": claim.stage,
                             "item_state": state, **({"members": sorted(ticked_ids)} if members else {})}}
        # Without members or unreported reveals, the decision's event and the claim's end are
        # one INSERT; otherwise the decision's comes first and theirs follow.
        alone = not members and not views
        if not alone:
            audit_record(actor=user, **recorded)
        for member in members:
            if member.pk in ticked_ids:
                _member_decide(member, decision, user=user, claim=claim, state=state, now=now)
            else:
                member_requeue(member, actor=user, why="unticked in the cluster decision")
        claim_close(claim=claim, end=Claim.End.DECIDED, actor=user, views=views, item_state=state,
                    also=[recorded] if alone else ())
        exposure_add(user, items=1)
    return decision


def _member_decide(member: Item, cluster_decision: Decision, *, user, claim: Claim, state: str, now) -> Decision:
    """The cluster's verdict for one ticked member: its own immutable Decision, viewed or not by
    its own painted views. Audited: decision.recorded (with the cluster decision it follows)."""
    viewed = viewed_by(member, user)
    d = cluster_decision
    decision = decision_create(item=member, user=user, claim=claim, stage=claim.stage, verdict=d.verdict,
                               classification=d.classification, reason=d.reason, annotations=d.annotations, note=d.note,
                               viewed=viewed, started_at=claim.started_at, now=now, cluster_decision=d)
    member_state = _item_settle(member, decision, member.state, state, now)
    if member_state == Item.State.DECIDED:  # its own scanners hear its verdict, its entries are counted
        verdict_events(item_id=member.pk, decision=decision)
        entries_review(item_id=member.pk, verdict=decision.verdict)
    audit_record(actor=user, action="decision.recorded", subject=decision, item_id=member.pk,
                 data={"verdict": d.verdict, "classification": decision.classification, "reason": decision.reason,
                       "annotations": decision.annotations, "viewed_unblurred": viewed, "stage": claim.stage,
                       "item_state": member_state, "cluster_decision": d.pk, "representative": claim.item_id,
                       "distance": member.cluster_distance})
    return decision


def _item_settle(item: Item, decision: Decision, from_state: str, state: str, now) -> str:
    """Move the item on to its next state, no longer held, with the verdict and the times that
    go with that state: one UPDATE. Returns the state."""
    fields = {}
    if decision.verdict != Decision.Verdict.ESCALATED:
        fields.update(verdict=decision.verdict, verdict_reason=decision.reason, decided_at=now)
    if state in (Item.State.QA, Item.State.ESCALATED):
        fields["queued_at"] = now  # waits in its next queue from now
        fields["rank_at"] = rank_time(now, item.priority, item.urgent)
    Item.objects.filter(pk=item.pk).update(state=item_move(from_state, state), claimed_by=None, lease_until=None,
                                           **fields)
    return state


def verdict_events(*, item_id: int, decision: Decision, overturned: bool = False) -> None:
    """Tell the item's scanners its standing verdict (the caller holds the transaction): the
    verdict and, for not apparent CSAM, the reason category; never who decided. And note the
    feedback owed to NCMEC's hash-sharing lists (events.list_feedback_note)."""
    list_feedback_note(item_id=item_id, verdict=decision.verdict, reason=decision.reason)
    if decision.verdict == Decision.Verdict.CONFIRMED:
        extra = {"overturned": True} if overturned else {}
        item_events(item_id=item_id, type=ScannerEvent.Type.CONFIRMED, **extra)
    elif decision.verdict == Decision.Verdict.NOT_CSAM:
        extra = {"overturned": True} if overturned else {}
        item_events(item_id=item_id, type=ScannerEvent.Type.NOT_CONFIRMED, reason=decision.reason, **extra)
