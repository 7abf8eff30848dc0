#!/usr/bin/env python3
"""Checks captured webhook deliveries the way a Cobo SDK user would.

Usage: python cobo_waas2_verify.py CAPTURES.json

CAPTURES.json is a JSON list of deliveries as a receiver saw them:

    [{"headers": {"biz-timestamp": "...", ...},
      "body_b64": "<the raw body bytes, base64>",
      "public_key_hex": "<the server's Ed25519 public key, 64 hex chars>"}]

Run it with a Python that has cobo-waas2 1.46.0 installed (scripts/test makes
one under target/py/cobo-waas2). For each delivery it checks:

- the signature, with Cobo's own verification code from the SDK, not ours:
  `cobo_waas2.server_demo.verify_signature`, the function of Cobo's sample
  webhook receiver, and `cobo_waas2.crypto.signing_helper.SignHelper.verify`,
  which the SDK's API client uses on signed API answers. Both take
  `"<body>|<Biz-Timestamp>"` as text, hash it twice with SHA-256 and check the
  Ed25519 signature with PyNaCl. As a control, each must also refuse the
  same signature under a different timestamp;
- that `BIZ_TIMESTAMP` and `BIZ_RESP_SIGNATURE`, when sent, repeat the
  hyphenated headers;
- that `cobo_waas2.models.WebhookEvent.from_json(body)` parses the body, puts
  `data` on the typed class its `data_type` names (`Transaction` or
  `TSSRequest`), and keeps `event_id`, `type` (a known event type, not the
  SDK's UNKNOWN) and `data.data_type`;
- that the parsed event written back with `to_json()` equals the body: the
  SDK drops unknown fields and unknown enum values without a word, so any
  difference here is something an SDK user would silently lose.

Exit status 0 when every delivery passes; 1 with one line per problem
otherwise; 2 when the input cannot be read.
"""

import base64
import json
import sys

from cobo_waas2 import server_demo
from cobo_waas2.crypto.signing_helper import SignHelper
from cobo_waas2.models import WebhookEvent
from cobo_waas2.models.transaction_webhook_event_data import TransactionWebhookEventData
from cobo_waas2.models.tss_request_webhook_event_data import TSSRequestWebhookEventData
from cobo_waas2.models.webhook_event_type import WebhookEventType

TYPED_DATA = {
    "Transaction": TransactionWebhookEventData,
    "TSSRequest": TSSRequestWebhookEventData,
}

KNOWN_EVENT_TYPES = {m.value for m in WebhookEventType if m.name != "UNKNOWN"}


def header(headers, name):
    """The value of a header, whatever the case of its name; None when absent."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def sdk_verifies(public_key, signature, message):
    """Whether both of the SDK's verify functions accept the signature."""
    try:
        demo = server_demo.verify_signature(public_key, signature, message)
        helper = SignHelper.verify(pub_key=public_key, signature=signature, content=message)
    except ValueError:
        # Not hex, or not a 32-byte key or 64-byte signature.
        return False
    return demo and helper


def diff(expected, actual, path="$"):
    """Every difference between two JSON values, as 'path: what'."""
    out = []
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            if key not in actual:
                out.append(f"{path}.{key}: dropped by the SDK")
            else:
                out += diff(expected[key], actual[key], f"{path}.{key}")
        out += [f"{path}.{key}: added by the SDK" for key in actual if key not in expected]
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            out.append(f"{path}: list of {len(expected)} became {len(actual)}")
        for i, (e, a) in enumerate(zip(expected, actual)):
            out += diff(e, a, f"{path}[{i}]")
    elif type(expected) is not type(actual) or expected != actual:
        out.append(f"{path}: {expected!r} became {actual!r}")
    return out


def check_signature(delivery, body_text):
    headers = delivery["headers"]
    timestamp = header(headers, "Biz-Timestamp")
    signature = header(headers, "Biz-Resp-Signature")
    if timestamp is None or signature is None:
        return ["Biz-Timestamp or Biz-Resp-Signature header missing"]

    problems = []
    for underscored, hyphenated, value in [
        ("BIZ_TIMESTAMP", "Biz-Timestamp", timestamp),
        ("BIZ_RESP_SIGNATURE", "Biz-Resp-Signature", signature),
    ]:
        copy = header(headers, underscored)
        if copy is not None and copy != value:
            problems.append(f"{underscored} {copy!r} differs from {hyphenated} {value!r}")

    if not (timestamp.isdigit() and len(timestamp) == 13):
        problems.append(f"Biz-Timestamp {timestamp!r} is not Unix milliseconds")
        return problems

    public_key = delivery["public_key_hex"]
    if not sdk_verifies(public_key, signature, f"{body_text}|{timestamp}"):
        problems.append("the SDK's verify functions refuse the signature")
    if sdk_verifies(public_key, signature, f"{body_text}|{int(timestamp) + 1}"):
        problems.append("the SDK's verify functions accept a changed timestamp")
    return problems


def check_event(body_text):
    raw = json.loads(body_text)
    try:
        event = WebhookEvent.from_json(body_text)
    except Exception as error:  # the SDK raises ValueError or pydantic errors
        return [f"WebhookEvent.from_json refused the body: {type(error).__name__}: {error}"]

    problems = []
    data_type = raw.get("data", {}).get("data_type")
    expected_class = TYPED_DATA.get(data_type)
    instance = event.data.actual_instance
    if expected_class is None:
        problems.append(f"data_type {data_type!r} is neither Transaction nor TSSRequest")
    elif not isinstance(instance, expected_class):
        problems.append(
            f"data parsed as {type(instance).__name__}, not {expected_class.__name__}"
        )

    if event.event_id != raw.get("event_id"):
        problems.append(f"event_id {raw.get('event_id')!r} became {event.event_id!r}")
    if raw.get("type") not in KNOWN_EVENT_TYPES:
        problems.append(f"type {raw.get('type')!r} is not an event type the SDK knows")
    elif event.type.value != raw["type"]:
        problems.append(f"type {raw['type']!r} became {event.type.value!r}")
    if getattr(instance, "data_type", None) != data_type:
        problems.append(
            f"data.data_type {data_type!r} became {getattr(instance, 'data_type', None)!r}"
        )

    problems += diff(raw, json.loads(event.to_json()))
    return problems


def check(delivery):
    """The problems of one delivery, and a short label for messages."""
    body = base64.b64decode(delivery["body_b64"], validate=True)
    try:
        body_text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return "(not UTF-8)", [f"the body is not UTF-8, as the SDK reads it: {error}"]
    try:
        raw = json.loads(body_text)
        label = f"{raw.get('event_id')} {raw.get('type')}"
    except (json.JSONDecodeError, AttributeError):
        return "(not JSON)", ["the body is not a JSON object"]

    return label, check_signature(delivery, body_text) + check_event(body_text)


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} CAPTURES.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as file:
            deliveries = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        print(f"cannot read {argv[1]}: {error}", file=sys.stderr)
        return 2
    if not isinstance(deliveries, list) or not deliveries:
        print(f"{argv[1]} holds no deliveries: expected a non-empty JSON list", file=sys.stderr)
        return 2

    failed = 0
    for index, delivery in enumerate(deliveries):
        label, problems = check(delivery)
        if problems:
            failed += 1
        for problem in problems:
            print(f"delivery {index} ({label}): {problem}", file=sys.stderr)
        if not problems:
            print(f"delivery {index} ({label}): verified and parsed by cobo_waas2")

    if failed:
        print(f"{failed} of {len(deliveries)} deliveries do not conform", file=sys.stderr)
        return 1
    print(f"all {len(deliveries)} deliveries conform to cobo_waas2")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
