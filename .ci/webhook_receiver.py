"""A webhook receiver for .ci/webhook-signatures: verifies contactd's deliveries with the
standardwebhooks package, an implementation independent of the server's.

    webhook_receiver.py serve SECRETS LOG PORT_FILE
    webhook_receiver.py check LOG FEED TYPE...

serve listens on 127.0.0.1 at a free port, written to PORT_FILE once it listens. SECRETS
holds one `LABEL whsec_…` a line and is read again for every delivery, so a rotation only
needs the file rewritten. Each delivery is verified with every secret in it, and a copy of
its body with one byte changed must fail with the first; it is answered 204 when all of
that holds, 400 otherwise, and appended to LOG as one JSON line.

check compares LOG with FEED (the answer of GET /api/v1/events) and the expected event
types, printing what is wrong and exiting 1 on any failure.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import standardwebhooks


def verifies(secret, body, headers):
    try:
        standardwebhooks.Webhook(secret).verify(body, headers)
        return True
    except standardwebhooks.WebhookVerificationError:
        return False


def tampered(body):
    """The body with one ASCII byte from its middle changed, so it stays valid UTF-8."""
    changed = bytearray(body)
    i = len(changed) // 2
    while changed[i] >= 0x80:
        i += 1
    changed[i] ^= 0x01
    return bytes(changed)


def serve(secrets_path, log_path, port_path):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = dict(self.headers.items())
            with open(secrets_path) as f:
                secrets = [line.split() for line in f if line.strip()]
            entry = {
                "path": self.path,
                "webhook_id": self.headers.get("webhook-id"),
                "signatures": len(self.headers.get("webhook-signature", "").split()),
                "non_ascii": any(b >= 0x80 for b in body),
                "verified": {label: verifies(secret, body, headers) for label, secret in secrets},
                "tampered_verified": verifies(secrets[0][1], tampered(body), headers),
            }
            try:
                event = json.loads(body)
                entry["id"] = event.get("id")
                entry["type"] = event.get("type")
            except ValueError as e:
                entry["error"] = f"body is not JSON: {e}"
            if not entry["verified"][secrets[0][0]]:
                entry["headers"] = headers
                entry["body"] = body.decode("utf-8", "replace")
            ok = all(entry["verified"].values()) and not entry["tampered_verified"]
            with open(log_path, "a") as log:
                log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self.send_response(204 if ok else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    with open(port_path + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    # Renamed into place, so a reader never sees half the port.
    os.rename(port_path + ".tmp", port_path)
    server.serve_forever()


def check(log_path, feed_path, expected_types):
    with open(log_path) as f:
        deliveries = [json.loads(line) for line in f]
    with open(feed_path) as f:
        events = json.load(f)["data"]["events"]
    problems = []
    for n, d in enumerate(deliveries, 1):
        where = f"delivery {n} ({d.get('type')}, {d.get('webhook_id')})"
        for label, ok in d["verified"].items():
            if not ok:
                problems.append(
                    f"{where}: standardwebhooks refused it with the {label} secret:"
                    f" {json.dumps(d, ensure_ascii=False)}"
                )
        if d["tampered_verified"]:
            problems.append(f"{where}: a body with one byte changed verified")
        if d["webhook_id"] != d.get("id"):
            problems.append(f"{where}: webhook-id is not the event's id {d.get('id')}")
        if d["path"] != "/hook":
            problems.append(f"{where}: posted to {d['path']}, not /hook")
        if "error" in d:
            problems.append(f"{where}: {d['error']}")
        # Two signatures exactly when two secrets are in use.
        if d["signatures"] != len(d["verified"]):
            problems.append(
                f"{where}: {d['signatures']} signatures, {len(d['verified'])} secrets in use"
            )
    delivered = [(d.get("id"), d.get("type")) for d in deliveries]
    fed = [(e["id"], e["type"]) for e in events]
    if delivered != fed:
        problems.append(f"deliveries {delivered} are not the feed's events {fed}")
    if [t for _, t in fed] != expected_types:
        problems.append(f"the feed holds {[t for _, t in fed]}, expected {expected_types}")
    # Raw UTF-8, not \u escapes: the signature covers the bytes, not the text.
    if not any(d["non_ascii"] for d in deliveries):
        problems.append("no delivery's body held a non-ASCII byte")
    if not any(len(d["verified"]) > 1 for d in deliveries):
        problems.append("no delivery was checked with both the new and the previous secret")
    for p in problems:
        print(f"webhook signatures: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:5])
    elif sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4:]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
