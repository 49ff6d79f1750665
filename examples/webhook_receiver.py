"""A tenant's webhook receiver in a few lines: verify each delivery, print its event.

    python examples/webhook_receiver.py PORT WHSEC_SECRET

Standard Webhooks' own package checks the signature and the timestamp; a delivery that
fails the check gets 400 and is retried by tenvoice, one that passes gets 204. Every retry
of an event carries the same `webhook-id`, so a receiver dedupes on it.
"""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

port, secret = int(sys.argv[1]), sys.argv[2]
webhook = Webhook(secret)
seen: set[str] = set()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            event = webhook.verify(body, headers)
        except WebhookVerificationError:
            self.send_response(400)
        else:
            if headers["webhook-id"] not in seen:
                seen.add(headers["webhook-id"])
                print("verified", event["type"], event["data"]["object"]["id"], flush=True)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass  # one line per event above is enough


HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
