#!/usr/bin/env bash
# `make run`: the embedded demo (SQLite, tasks in-process, files under var/) with synthetic
# data, and beside it the fake CyberTipline (devtools/) on 127.0.0.1:8001 when NCMEC's schema
# copy is at hand, so that a lead can take a confirmed item to a finished (fake) report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
unset DATABASE_URL CELERY_BROKER_URL TSREVIEW_ENV
mkdir -p var
$PY manage.py migrate --noinput
# A scanner's webhook endpoint (devtools/webhook_receiver.py): it checks each event's signature
# and logs it to var/webhook-receiver.log. Started first, so that it hears the seeding's events.
$PY -m devtools.webhook_receiver --port 8003 --secret-file var/webhook-secret > var/webhook-receiver.log 2>&1 &
receiver=$!
pids="$receiver"
trap 'kill $pids 2>/dev/null || true' EXIT
sleep 0.5
$PY manage.py seed_demo --webhook-url http://127.0.0.1:8003/hooks --webhook-secret-file var/webhook-secret
echo "The demo scanner's signed events are logged in var/webhook-receiver.log."
xsd=../shared/ncmec/cyber_tipline.xsd
if [ -f "$xsd" ]; then
  $PY -m devtools.fake_cybertip --port 8001 > var/fake-cybertip.log 2>&1 &
  pids="$pids $!"
  export TSREVIEW_CYBERTIP_BASE_URL=http://127.0.0.1:8001/ispws TSREVIEW_CYBERTIP_USERNAME=demo TSREVIEW_CYBERTIP_PASSWORD=demo
  for _ in $(seq 20); do $PY manage.py cybertip_fetch_xsd >/dev/null 2>&1 && break; sleep 0.5; done
  echo "Reports go to a fake CyberTipline on 127.0.0.1:8001 (nothing leaves this machine)."
else
  echo "Reports can be drafted but not sent: NCMEC's schema copy is not at $xsd."
fi
echo "Serving on http://127.0.0.1:8000/ (embedded: SQLite, tasks in-process). Ctrl-C stops."
$PY manage.py runserver 127.0.0.1:8000 --insecure --noreload
