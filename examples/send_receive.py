"""A full send -> receive -> acknowledge round with Python `requests`.

Against the demo gateway (`cargo run --release -- demo` serves
https://localhost:8443 with its PKI under ./demo/pki); run from the
repository root:

    pip install requests
    python3 examples/send_receive.py

BRDO_GATEWAY and BRDO_PKI point it at another gateway and PKI directory.
Each partner system presents its own client certificate (`cert=`) and
trusts only the gateway's CA (`verify=`).
"""

import os
import sys

import requests

GATEWAY = os.environ.get("BRDO_GATEWAY", "https://localhost:8443")
PKI = os.environ.get("BRDO_PKI", "demo/pki")
CA = os.path.join(PKI, "ca.crt")


def partner(partner_id):
    """A session presenting the partner's certificate, trusting the CA."""
    s = requests.Session()
    stem = os.path.join(PKI, f"partner-{partner_id}")
    s.cert = (f"{stem}.crt", f"{stem}.key")
    s.verify = CA
    # Otherwise REQUESTS_CA_BUNDLE, where set, would replace `verify`.
    s.trust_env = False
    return s


def check(resp, expected):
    """Stops with the problem document when the answer is not `expected`."""
    if resp.status_code != expected:
        sys.exit(f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text}")
    return resp.json()


albania, serbia = partner("AL-CTD"), partner("RS-MOI")

message = {
    "recipients": ["RS-MOI"],
    "subject": "Travel of a returning foreign terrorist fighter",
    "body": "Expected to cross into Serbia this week.",
    "label": {"classification": "EU_RESTRICTED", "handling_codes": ["H2"]},
    "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
    "purpose": "investigation",
    "personal_data": {"subjects": ["suspect"]},
    "case_ref": "AL-2026-0042",
}
sent = check(
    albania.post(f"{GATEWAY}/v1/messages", json=message,
                 headers={"Brdo-Officer": "insp.hoxha"}),
    201,
)
print("sent", sent["id"], "retain until", sent["retain_until"])

# Long-poll the inbox until the message shows up (each call waits up to 5 s).
# The cursor is opaque: send `next` back unchanged ("0" starts from the
# beginning); an answer with nothing new hands back the same cursor.
cursor = "0"
while True:
    page = check(serbia.get(f"{GATEWAY}/v1/inbox",
                            params={"after": cursor, "wait": 5}), 200)
    if any(m["id"] == sent["id"] for m in page["messages"]):
        break
    if page["next"] == cursor:
        sys.exit("the message did not arrive")
    cursor = page["next"]

officer = {"Brdo-Officer": "insp.petrovic"}
msg = check(
    serbia.get(f"{GATEWAY}/v1/messages/{sent['id']}",
               headers={**officer, "Brdo-Justification": "Case AL-2026-0042"}),
    200,
)
print("read", msg["marking"], "-", msg["subject"])

# State-changing calls declare JSON even without a body.
check(serbia.post(f"{GATEWAY}/v1/messages/{sent['id']}/ack", json={}, headers=officer), 200)
status = check(albania.get(f"{GATEWAY}/v1/messages/{sent['id']}/status"), 200)
states = {r["partner"]: r["status"] for r in status["recipients"]}
print("status", states)
if states != {"RS-MOI": "acknowledged"}:
    sys.exit("the round did not end acknowledged")
