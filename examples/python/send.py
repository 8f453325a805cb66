"""Send a unit's own export to the bus with Python's requests, and wait until each
message has reached the national portal.

    LIENTHONG_KEY=<unit key> python3 examples/python/send.py <unit> <flow> <file>

The content type follows the file (.json, .xml, .csv); flow `soap` posts a SOAP
envelope to /soap/<unit>. LIENTHONG_URL defaults to http://127.0.0.1:8080.
Prints `accepted <ids>` and then `delivered <id> to portal` per message.
"""

import hashlib
import os
import re
import sys
import time

import requests

CONTENT_TYPES = {".json": "application/json", ".xml": "text/xml", ".csv": "text/csv"}
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def send(session, url, unit, flow, path):
    body = open(path, "rb").read()
    content_type = CONTENT_TYPES.get(os.path.splitext(path)[1])
    if content_type is None:
        sys.exit(f"error: {path}: send .json, .xml or .csv")
    endpoint = f"{url}/soap/{unit}" if flow == "soap" else f"{url}/api/v1/units/{unit}/events/{flow}"
    headers = {
        "Content-Type": content_type,
        # A resend with the same key (after a timeout) stores nothing twice.
        "Idempotency-Key": hashlib.sha256(body).hexdigest()[:32],
    }
    for attempt in range(6):
        reply = session.post(endpoint, data=body, headers=headers, timeout=30)
        if reply.status_code in (429, 503):
            # Busy or over the unit's rate: wait as the bus says, then send again.
            wait = int(reply.headers.get("Retry-After", "5"))
            print(f"bus answered {reply.status_code}; retrying in {wait} s", file=sys.stderr)
            time.sleep(wait)
            continue
        break
    if reply.status_code not in (200, 202):
        # Errors are JSON: {"error": {"code", "message", "field"?}} (SOAP: a Fault).
        sys.exit(f"error: HTTP {reply.status_code}: {reply.text}")
    return sorted(set(ID.findall(reply.text)))


def wait_delivered(session, url, unit, message_id, target="portal", timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = session.get(f"{url}/api/v1/units/{unit}/messages/{message_id}", timeout=10).json()
        for d in state.get("deliveries", []):
            if d["target"] == target and d["delivery"]["state"] == "delivered":
                return True
            if d["target"] == target and d["delivery"]["state"] == "dead":
                sys.exit(f"error: {message_id} is a dead letter at {target}: {d['delivery']}")
        time.sleep(0.2)
    return False


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    unit, flow, path = sys.argv[1:4]
    url = os.environ.get("LIENTHONG_URL", "http://127.0.0.1:8080").rstrip("/")
    key = os.environ.get("LIENTHONG_KEY") or sys.exit("error: set LIENTHONG_KEY to the unit key")
    session = requests.Session()
    session.trust_env = os.environ.get("LIENTHONG_USE_PROXY") == "1"
    session.headers["Authorization"] = f"Bearer {key}"
    ids = send(session, url, unit, flow, path)
    print("accepted " + " ".join(ids), flush=True)
    for message_id in ids:
        if not wait_delivered(session, url, unit, message_id):
            sys.exit(f"error: {message_id} not delivered to the portal within 30 s")
        print(f"delivered {message_id} to portal", flush=True)


if __name__ == "__main__":
    main()
