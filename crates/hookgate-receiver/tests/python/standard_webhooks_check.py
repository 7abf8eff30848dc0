"""Verify Standard Webhooks cases with the reference Python library.

Usage: python standard_webhooks_check.py CASES.json

CASES.json is a list of objects with `id`, `timestamp` (Unix seconds, text),
`body_base64`, `secret` (`whsec_...`), `signature` (the `webhook-signature`
header) and `valid` (what our Rust signer expects). Each case is verified
with `standardwebhooks.Webhook`; the script prints every disagreement and
exits 1 if there was any, 2 on bad input, 0 when all agree.
"""

import base64
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def check(case):
    webhook = Webhook(case["secret"])
    body = base64.b64decode(case["body_base64"])
    headers = {
        "webhook-id": case["id"],
        "webhook-timestamp": case["timestamp"],
        "webhook-signature": case["signature"],
    }
    try:
        webhook.verify(body, headers, json_parse=False)
        return True
    except WebhookVerificationError:
        return False


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        cases = json.load(handle)
    if not cases:
        print("no cases given", file=sys.stderr)
        return 2

    disagreements = 0
    for index, case in enumerate(cases):
        verdict = check(case)
        if verdict != case["valid"]:
            disagreements += 1
            print(
                f"case {index} ({case.get('name', '')}): Rust says valid={case['valid']}, "
                f"standardwebhooks says valid={verdict}",
                file=sys.stderr,
            )
    print(f"{len(cases) - disagreements} agreed, {disagreements} disagreed")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
