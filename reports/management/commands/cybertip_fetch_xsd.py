import hashlib
import os

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from lxml import etree

from reports.audit import audit_record
from reports.cybertip.client import Client, CyberTipError
from reports.cybertip.xml import schema_path


class Command(BaseCommand):
    help = "Download NCMEC's current CyberTipline schema (GET <base>/xsd) to TSREVIEW_CYBERTIP_XSD."

    def handle(self, *args, **options):
        try:
            data = Client.from_settings().xsd()
        except CyberTipError as exc:
            raise CommandError(str(exc)) from None
        try:  # never replace a working schema with something that is not one
            etree.XMLSchema(etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True)))
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
            raise CommandError(f"The CyberTipline answered with something that is not a schema: {exc}") from None
        path = schema_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".download")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        digest = hashlib.sha256(data).hexdigest()
        with transaction.atomic():
            audit_record(actor=None, action="cybertip.schema_fetched", data={"path": str(path), "sha256": digest})
        self.stdout.write(f"Saved the CyberTipline schema to {path} ({len(data)} bytes, sha256 {digest[:16]}…).")
