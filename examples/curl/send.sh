#!/usr/bin/env bash
# Send a unit's own export to the bus with curl, then show where the message stands.
#
#   LIENTHONG_KEY=<unit key> examples/curl/send.sh <unit> <flow> <file>
#
# The content type follows the file: .json -> application/json, .xml -> text/xml,
# .csv -> text/csv. STAMEQ's SOAP envelopes go to /soap/stameq (flow: soap).
# LIENTHONG_URL defaults to http://127.0.0.1:8080.
set -euo pipefail
unit=${1:?unit (nafosted, stameq, ipo, varans)}
flow=${2:?flow (dossier_sync, dossier_progress, ... or soap)}
file=${3:?file to send}
url=${LIENTHONG_URL:-http://127.0.0.1:8080}
key=${LIENTHONG_KEY:?set LIENTHONG_KEY to the unit key}

case "$file" in
  *.json) type=application/json ;;
  *.xml) type=text/xml ;;
  *.csv) type=text/csv ;;
  *) echo "error: $file: send .json, .xml or .csv" >&2; exit 2 ;;
esac
if [ "$flow" = soap ]; then
  endpoint="$url/soap/$unit"
else
  endpoint="$url/api/v1/units/$unit/events/$flow"
fi

# Send: 202 (JSON ids) or 200 (SOAP answer) once the events are on the bus's disk. The
# same Idempotency-Key on a resend (after a timeout) stores nothing twice.
answer=$(curl -sS --fail-with-body -X POST "$endpoint" \
  -H "Authorization: Bearer $key" \
  -H "Content-Type: $type" \
  -H "Idempotency-Key: $(sha256sum "$file" | cut -c1-32)" \
  --data-binary @"$file")
ids=$(printf '%s' "$answer" | grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' | sort -u)
[ -n "$ids" ] || { echo "error: no message id in the answer: $answer" >&2; exit 1; }
echo "accepted $(echo $ids)"

# Where each message stands (deliveries per national platform).
for id in $ids; do
  curl -sS --fail-with-body "$url/api/v1/units/$unit/messages/$id" \
    -H "Authorization: Bearer $key"
  echo
done
