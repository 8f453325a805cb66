"""Send a NAFOSTED dossier with a client generated from the bus's OpenAPI document by
openapi-python-client (the generated package `lienthong_client` is on PYTHONPATH).

Usage: generated_client.py BASE_URL UNIT_KEY EVENT_JSON_FILE DOSSIER_CODE
Prints {"status": <HTTP status>, "ids": [...]} as JSON.
"""

import json
import sys

from lienthong_client import AuthenticatedClient
from lienthong_client.api.unit_nafosted import send_nafosted_dossier_sync
from lienthong_client.models import NafostedDossierSyncEvent

base_url, key, event_file, code = sys.argv[1:5]
with open(event_file, encoding="utf-8") as f:
    data = json.load(f)
data["dossierCode"] = code
event = NafostedDossierSyncEvent.from_dict(data)
client = AuthenticatedClient(base_url=base_url, token=key, httpx_args={"trust_env": False})
response = send_nafosted_dossier_sync.sync_detailed(client=client, body=event, idempotency_key=code)
parsed = response.parsed
ids = [a.id for a in parsed.accepted] if hasattr(parsed, "accepted") else []
print(json.dumps({"status": int(response.status_code), "ids": [str(i) for i in ids]}))
