#!/usr/bin/env bash
# A full send → receive → acknowledge round with curl, against the demo
# gateway (`cargo run --release -- demo` serves https://localhost:8443 with
# its PKI under ./demo/pki). Run from the repository root:
#
#   bash examples/curl.sh
#
# BRDO_GATEWAY and BRDO_PKI point it at another gateway and PKI directory.
# Every call presents a partner's client certificate (mutual TLS); there is
# no other way in.
set -euo pipefail
GW=${BRDO_GATEWAY:-https://localhost:8443}
PKI=${BRDO_PKI:-demo/pki}

# curl as a partner: its certificate and key, and the gateway's CA.
as() {
  local partner=$1
  shift
  curl -sS --fail-with-body --cacert "$PKI/ca.crt" \
    --cert "$PKI/partner-$partner.crt" --key "$PKI/partner-$partner.key" "$@"
}
# The first "id" member of a JSON answer (no jq needed).
id_of() { grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4; }

echo "# 1. AL-CTD sends an EU_RESTRICTED message to RS-MOI"
sent=$(as AL-CTD -X POST "$GW/v1/messages" \
  -H 'Content-Type: application/json' -H 'Brdo-Officer: insp.hoxha' \
  --data-binary @- <<'JSON'
{
  "recipients": ["RS-MOI"],
  "subject": "Travel of a returning foreign terrorist fighter",
  "body": "Expected to cross into Serbia this week.",
  "label": {"classification": "EU_RESTRICTED", "handling_codes": ["H2"]},
  "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
  "purpose": "investigation",
  "personal_data": {"subjects": ["suspect"]},
  "case_ref": "AL-2026-0042"
}
JSON
)
echo "$sent"
id=$(printf '%s' "$sent" | id_of)

echo "# 2. RS-MOI lists its inbox (long-polls up to 5 s)"
as RS-MOI "$GW/v1/inbox?wait=5"
echo

echo "# 3. RS-MOI reads the message, naming the officer and the reason"
as RS-MOI "$GW/v1/messages/$id" \
  -H 'Brdo-Officer: insp.petrovic' -H 'Brdo-Justification: Case AL-2026-0042: border alert'
echo

echo "# 4. RS-MOI acknowledges it"
as RS-MOI -X POST "$GW/v1/messages/$id/ack" \
  -H 'Content-Type: application/json' -H 'Brdo-Officer: insp.petrovic'
echo

echo "# 5. AL-CTD checks the delivery status"
status=$(as AL-CTD "$GW/v1/messages/$id/status")
echo "$status"
case "$status" in
  *'"status":"acknowledged"'*) echo "round complete: $id acknowledged" ;;
  *) echo "unexpected status" >&2; exit 1 ;;
esac
