"""A lead overturns a standing verdict with a new decision that supersedes it."""

from django.db import transaction
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..intake.quarantine import entries_review
from ..models import Claim, Decision, Item
from ..reporting.drafting import report_files_withdraw
from ..reporting.preservation import sending_guard
from ..review.decisions import decision_create, decision_validate, reveal_check, standing_decision, verdict_events


def decision_overturn(*, lead, item: Item, verdict: str, classification: str = "", reason: str = "", note: str) -> Decision:
    """A lead replaces the standing verdict with a new decision that supersedes it (decisions
    are never edited). The lead's own recorded reveal counts for a confirmation. A file no
    longer confirmed leaves its drafts; nothing changes while a report with it is being sent.
    The caller has checked the lead role. Audited: decision.overturned."""
    if not note.strip():
        raise Refused({"note": "An overturn needs a reason."})
    if verdict == Decision.Verdict.ESCALATED:
        raise Refused({"verdict": "An overturn is confirm or not apparent CSAM."})
    decision_validate(verdict=verdict, classification=classification, reason=reason, note=note, stage=Claim.Stage.LEAD)
    viewed = reveal_check(item=item, user=lead, verdict=verdict)
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item.pk)
        standing = standing_decision(item)
        if item.state != Item.State.DECIDED or standing is None:
            raise Refused({"verdict": "Only a decided item can be overturned."})
        try:
            sending_guard(item)
        except Refused as exc:
            raise Refused({"verdict": exc.errors["item"]}) from None
        if verdict != Decision.Verdict.CONFIRMED:
            report_files_withdraw(actor=lead, item=item)
        now = timezone.now()
        decision = decision_create(item=item, user=lead, stage=Claim.Stage.LEAD, verdict=verdict,
                                   classification=classification, reason=reason, note=note, viewed=viewed,
                                   supersedes=standing, now=now)
        Item.objects.filter(pk=item.pk).update(verdict=verdict, verdict_reason=decision.reason, decided_at=now)
        verdict_events(item_id=item.pk, decision=decision, overturned=True)
        entries_review(item_id=item.pk, verdict=decision.verdict)
        audit_record(actor=lead, action="decision.overturned", subject=decision, item_id=item.pk,
                     data={"supersedes": standing.pk,
                           "old": {"verdict": standing.verdict, "classification": standing.classification,
                                   "reason": standing.reason},
                           "new": {"verdict": verdict, "classification": decision.classification, "reason": decision.reason},
                           "note": decision.note})
    return decision
