"""Who may see what. Entry points fetch rows for a person or a scanner only through these
helpers; missing and not-yours both raise Http404 (DESIGN §8)."""

import uuid
from functools import wraps

from django.http import Http404

from .models import Claim, EntryQuarantine, Hold, Item, Report, ReportFile, Role, Submission, VendorNotice, ViewEvent, ViewTask


def user_roles(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    if not hasattr(user, "_tsreview_roles"):  # once per request: the user object lives that long
        roles = set(user.groups.values_list("name", flat=True)) & set(Role.values)
        if user.is_superuser:
            roles.add(Role.ADMIN)
        user._tsreview_roles = roles
    return user._tsreview_roles


def is_lead(user) -> bool:
    """Leads and admins may audit, decide escalations and see every item."""
    return bool(user_roles(user) & {Role.LEAD, Role.ADMIN})


def lead_required(view):
    """Lead pages: anyone else gets 404, as for any page they may not see."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_lead(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


def _get(queryset, **lookup):
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def item_for_user(user, pk, *, claim_required=False) -> tuple[Item, Claim | None]:
    """The only way to fetch an item for a person: the reviewer holding its claim, or a lead.

    Returns the item and the person's open claim on it (None for a lead without one). A
    near-duplicate waiting in the cluster of an item the person holds comes with that claim
    (the cluster is one task); never with claim_required (it is decided through its cluster)."""
    item = _get(Item.objects, pk=int(pk) if str(pk).isdigit() else -1)
    claim = Claim.objects.filter(item=item, user=user, end=Claim.End.OPEN).first()
    holds = claim is not None and item.state == Item.State.CLAIMED and item.claimed_by_id == user.pk
    if holds:
        return item, claim
    if item.state == Item.State.CLUSTERED and item.cluster_of_id and not claim_required:
        rep_claim = Claim.objects.filter(item_id=item.cluster_of_id, user=user, end=Claim.End.OPEN,
                                         item__state=Item.State.CLAIMED, item__claimed_by=user).first()
        if rep_claim is not None:
            return item, rep_claim
    if not claim_required:
        task = ViewTask.objects.filter(claimed_by=user, done_at__isnull=True).only("items").first()
        if task is not None and item.pk in task.items:
            return item, None  # a file of the "view these" task the person holds
    if is_lead(user) and not claim_required:
        return item, None
    raise Http404


def claim_for_user(user, item_id) -> Claim | None:
    """The person's open claim on an item, if they still hold one (the heartbeat's question)."""
    return Claim.objects.filter(item_id=item_id, user=user, end=Claim.End.OPEN).first()


def view_task_for_user(user, pk) -> ViewTask:
    """A "view these" task the person holds, not yet done."""
    return _get(ViewTask.objects.select_related("report"), pk=pk, claimed_by=user, done_at__isnull=True)


def view_for_user(user, view_id) -> ViewEvent:
    """A reveal of the person's own (its length is theirs to report)."""
    return _get(ViewEvent.objects, pk=view_id, user=user)


def submission_for_scanner(scanner, submission_id) -> Submission:
    """The scanner's own submission; another scanner's and a missing one are both 404."""
    try:
        key = uuid.UUID(str(submission_id))
    except ValueError:
        raise Http404 from None
    return _get(Submission.objects.select_related("item").prefetch_related("matches"), pk=key, scanner=scanner)


# Lead-only pages have passed lead_required; these fetch their rows.

def item_for_lead(pk) -> Item:
    return _get(Item.objects, pk=pk)


def report_for_lead(pk) -> Report:
    return _get(Report.objects, pk=pk)


def report_file_for_lead(pk) -> ReportFile:
    return _get(ReportFile.objects, pk=pk)


def hold_for_lead(pk) -> Hold:
    return _get(Hold.objects, pk=pk)


def quarantine_for_lead(pk) -> EntryQuarantine:
    return _get(EntryQuarantine.objects, pk=pk)


def notice_for_lead(pk) -> VendorNotice:
    return _get(VendorNotice.objects, pk=pk)
