"""Notices to dataset vendors (or hosts) after a report on material from their dataset.

A finished report whose files came from a dataset (source types in
TSREVIEW_VENDOR_NOTICE_SOURCE_TYPES: third_party_dataset, ai_training_data) gets a draft notice
per vendor, but only TSREVIEW_VENDOR_NOTICE_HOLD_DAYS after it finished, so that a notice does
not tip off an investigation. It names the dataset, version, record ids and each file's SHA-256
and MD5: never media, never who reviewed. A lead approves and sends it (Django's email backend)
and records the vendor's acknowledgement. Audited: vendor_notice.drafted / .sent / .acknowledged.
"""

import smtplib
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..models import Report, ReportFile, VendorNotice


def _datasets_by_vendor(report: Report) -> dict[str, list[dict]]:
    files = ReportFile.objects.filter(report=report).select_related("submission", "item").order_by("id")
    grouped = defaultdict(lambda: defaultdict(list))
    for f in files:
        provenance = f.submission.provenance or {}
        dataset = provenance.get("dataset") or {}
        if f.submission.source_type not in settings.TSREVIEW_VENDOR_NOTICE_SOURCE_TYPES or not dataset.get("vendor"):
            continue
        key = (dataset.get("name") or "(unnamed dataset)", dataset.get("version") or "")
        grouped[dataset["vendor"]][key].append({"record_id": dataset.get("record_id") or "", "sha256": f.item.sha256,
                                                "md5": f.item.md5})
    return {vendor: [{"dataset": name, "version": version, "records": records}
                     for (name, version), records in sorted(sets.items())] for vendor, sets in grouped.items()}


def notice_text(vendor: str, datasets: list[dict]) -> tuple[str, str]:
    company = settings.TSREVIEW_COMPANY_NAME or "our company"
    lines = [f"To {vendor},", "",
             f"{company} found files in data obtained from you that people on our review team confirmed as child "
             "sexual abuse material. We reported them to the National Center for Missing & Exploited Children "
             "(NCMEC) CyberTipline, as US law requires.", "",
             "Please remove these records from every copy and release of the dataset, find where they came from, "
             "and reply to acknowledge this notice. The files are identified below by record id and hash; we do "
             "not send the files themselves.", ""]
    for d in datasets:
        lines.append(f"Dataset: {d['dataset']}" + (f", version {d['version']}" if d["version"] else ""))
        lines += [f"  record {r['record_id'] or '(no record id)'}  SHA-256 {r['sha256']}  MD5 {r['md5']}" for r in d["records"]]
        lines.append("")
    lines.append(company)
    return f"Child sexual abuse material in your dataset ({', '.join(d['dataset'] for d in datasets)})", "\n".join(lines)


def vendor_notices_draft(*, now=None) -> list[VendorNotice]:
    """Draft the notices that are due: reports finished at least the hold-off ago, per vendor
    not yet noticed. Run by a beat task. Audited: vendor_notice.drafted."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.TSREVIEW_VENDOR_NOTICE_HOLD_DAYS)
    made = []
    for report in Report.objects.filter(state=Report.State.FINISHED, finished_at__lte=cutoff).order_by("id"):
        noticed = set(report.vendor_notices.values_list("vendor", flat=True))
        for vendor, datasets in sorted(_datasets_by_vendor(report).items()):
            if vendor not in noticed:
                notice = _draft(report, vendor, datasets, now)
                if notice:
                    made.append(notice)
    return made


def _draft(report, vendor, datasets, now) -> VendorNotice | None:
    subject, body = notice_text(vendor, datasets)
    try:
        with transaction.atomic():
            notice = VendorNotice.objects.create(report=report, vendor=vendor, datasets=datasets, subject=subject,
                                                 body=body, created_at=now,
                                                 recipient=settings.TSREVIEW_VENDOR_CONTACTS.get(vendor, ""))
            audit_record(actor=None, action="vendor_notice.drafted", subject=notice, data={
                "report": report.pk, "vendor": vendor, "records": sum(len(d["records"]) for d in datasets)})
    except IntegrityError:  # drafted by a concurrent run
        return None
    return notice


def _locked(notice: VendorNotice, status: str, refusal: str) -> VendorNotice:
    notice = VendorNotice.objects.select_for_update(no_key=True).get(pk=notice.pk)
    if notice.status != status:
        raise Refused({"status": refusal})
    return notice


def vendor_notice_send(*, actor, notice: VendorNotice, recipient: str) -> VendorNotice:
    """A lead approves a draft and it is emailed to `recipient`. The view checked the role.
    Audited: vendor_notice.sent (who approved, to whom)."""
    recipient = recipient.strip()
    try:
        validate_email(recipient)
    except ValidationError:
        raise Refused({"recipient": "Give the vendor's email address."}) from None
    with transaction.atomic():
        notice = _locked(notice, VendorNotice.Status.DRAFT, "Only a draft can be sent; this one was sent already.")
        try:
            EmailMessage(notice.subject, notice.body, settings.TSREVIEW_NOTICE_FROM_EMAIL or None, [recipient]).send()
        except (OSError, smtplib.SMTPException) as exc:
            raise Refused({"recipient": f"The mail server did not take it: {exc}"}) from None
        notice.status, notice.recipient, notice.approved_by, notice.sent_at = (
            VendorNotice.Status.SENT, recipient, actor, timezone.now())
        notice.save(update_fields=["status", "recipient", "approved_by", "sent_at"])
        audit_record(actor=actor, action="vendor_notice.sent", subject=notice,
                     data={"report": notice.report_id, "vendor": notice.vendor, "recipient": recipient})
    return notice


def vendor_notice_acknowledge(*, actor, notice: VendorNotice, acknowledgement: str) -> VendorNotice:
    """A lead records the vendor's answer. Audited: vendor_notice.acknowledged."""
    acknowledgement = acknowledgement.strip()
    if not acknowledgement:
        raise Refused({"acknowledgement": "Say what the vendor answered (and when)."})
    with transaction.atomic():
        notice = _locked(notice, VendorNotice.Status.SENT, "Only a sent notice can be acknowledged.")
        notice.status, notice.acknowledgement, notice.acknowledged_at = (
            VendorNotice.Status.ACKNOWLEDGED, acknowledgement, timezone.now())
        notice.save(update_fields=["status", "acknowledgement", "acknowledged_at"])
        audit_record(actor=actor, action="vendor_notice.acknowledged", subject=notice,
                     data={"vendor": notice.vendor, "acknowledgement": acknowledgement})
    return notice


def notices_all(limit: int = 200):
    return VendorNotice.objects.select_related("report").order_by("-created_at")[:limit]
