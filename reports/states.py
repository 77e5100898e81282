"""The two state machines, as tables of allowed moves and one pure function each.

Every writer of Item.state and Report.state asks these functions first; an illegal move
raises IllegalMove (a Refused), so a bug cannot silently put a row where no flow leads.
docs/architecture.md shows both tables.
"""

from .errors import Refused
from .models import Item, Report

_I, _R = Item.State, Report.State

ITEM_MOVES = {
    (_I.NEW, _I.QUEUED): "previews made: waiting for a first review",
    (_I.NEW, _I.ESCALATED): "no machine could make its previews (a decoding limit): a lead decides",
    (_I.QUEUED, _I.CLAIMED): "a reviewer claims it",
    (_I.QA, _I.CLAIMED): "a second reviewer claims it for blind QA",
    (_I.ESCALATED, _I.CLAIMED): "a lead claims the escalation",
    (_I.CLAIMED, _I.QUEUED): "skipped or lease expired in first review",
    (_I.CLAIMED, _I.QA): "decided and sampled for QA; or a QA claim skipped or expired",
    (_I.CLAIMED, _I.ESCALATED): "escalated, or QA disagreed; or a lead's claim skipped or expired",
    (_I.CLAIMED, _I.DECIDED): "decided",
    (_I.NEW, _I.CLUSTERED): "previews made: a near-duplicate of a waiting item, reviewed with it",
    (_I.CLUSTERED, _I.QUEUED): "unticked in its cluster's decision, or split off by a lead: reviewed on its own",
    (_I.CLUSTERED, _I.DECIDED): "its cluster's decision applied to it",
    (_I.CLUSTERED, _I.QA): "its cluster's decision applied to it, and the cluster sampled for QA",
    (_I.CLUSTERED, _I.ESCALATED): "its cluster was escalated with it",
}

REPORT_MOVES = {
    (_R.DRAFT, _R.APPROVED): "a lead approves it; sending starts",
    (_R.APPROVED, _R.STALLED): "retries ran out on a transient failure",
    (_R.STALLED, _R.APPROVED): "a lead retries",
    (_R.APPROVED, _R.FINISHED): "NCMEC finished it",
    (_R.STALLED, _R.FINISHED): "a late answer shows NCMEC finished it",
    (_R.APPROVED, _R.FAILED): "a permanent failure; retracted at NCMEC",
    (_R.STALLED, _R.FAILED): "a lead gives it up; retracted at NCMEC",
    (_R.FAILED, _R.DRAFT): "a lead reopens it to fix and approve again",
}

# Reports whose files are on their way to NCMEC: their items' media and verdicts must stay.
REPORT_IN_FLIGHT = (_R.APPROVED, _R.STALLED)


class IllegalMove(Refused):
    def __init__(self, machine: str, current: str, new: str):
        super().__init__({"state": f"{machine} cannot go from {current or 'nothing'} to {new}."})


def item_move(current: str, new: str) -> str:
    """The item's next state, or IllegalMove."""
    if (current, new) not in ITEM_MOVES:
        raise IllegalMove("An item", current, new)
    return new


def report_move(current: str, new: str) -> str:
    """The report's next state, or IllegalMove."""
    if (current, new) not in REPORT_MOVES:
        raise IllegalMove("A report", current, new)
    return new
