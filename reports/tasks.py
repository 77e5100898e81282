"""Celery entry points: load by id, call one operation."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import intake
from .models import Item


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def item_previews_task(item_id: int) -> None:
    intake.item_previews_make(item_id=item_id)


@shared_task
def derivatives_sweep(older_than_seconds: int = 60) -> int:
    """Queue previews again for items left `new` (broker down at intake, a lost task)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(Item.objects.filter(state=Item.State.NEW, created_at__lt=cutoff).values_list("pk", flat=True)[:1000])
    for item_id in ids:
        intake.previews_enqueue(item_id)
    return len(ids)
