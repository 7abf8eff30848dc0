#!/usr/bin/env python3
"""Checks captured WaaS 1.0 deliveries the way a user of Cobo's 1.0 SDK would.

Usage: python cobo_custody_verify.py CAPTURES.json

CAPTURES.json is a JSON list of deliveries as a receiver saw them:

    [{"label": "what this delivery is",
      "headers": {"biz_timestamp": "...", "biz-resp-signature": "...", ...},
      "body_b64": "<the raw body bytes, base64>",
      "public_key_hex": "<the server's secp256k1 public key, 66 hex chars>"}]

Run it with a Python that has cobo-custody installed (scripts/test makes one
under target/py/cobo-custody). For each delivery it checks:

- the signature, with Cobo's own verification code, not ours:
  `cobo_custody.signer.local_signer.verify_ecdsa_signature`, the function the
  SDK's clients use on every signed API answer. It takes
  `"<body>|<timestamp>"` as text, hashes it twice with SHA-256 and checks
  the DER-encoded ECDSA signature with the `ecdsa` package on secp256k1. The
  timestamp and signature are read from `BIZ_TIMESTAMP` and
  `BIZ_RESP_SIGNATURE`, as the SDK's clients read them, and must repeat
  `Biz-Timestamp` and `Biz-Resp-Signature`. As controls, the same function
  must refuse the signature under another timestamp and over a changed body;
- that the public key is a 33-byte compressed secp256k1 point;
- that the body is one JSON object written as Python's `json.dumps` writes
  it (`", "` and `": "` separators, non-ASCII as \\uXXXX), the form Cobo's
  1.0 servers sent.

Exit status 0 when every delivery passes; 1 with one line per problem
otherwise; 2 when the input cannot be read.
"""

import base64
import json
import sys

from cobo_custody.signer.local_signer import verify_ecdsa_signature


def header(headers, name):
    """The value of a header, whatever the case of its name; None when absent."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def sdk_verifies(content, signature, public_key):
    """Whether the SDK's verify function accepts the signature over content."""
    try:
        return bool(verify_ecdsa_signature(content, signature, public_key))
    except (ValueError, AssertionError) as error:
        # Not hex, not a point on the curve, or not DER.
        print(f"  verify_ecdsa_signature raised {type(error).__name__}: {error}", file=sys.stderr)
        return False


def check_key(public_key):
    try:
        raw = bytes.fromhex(public_key)
    except ValueError:
        return [f"public key {public_key!r} is not hex"]
    if len(raw) != 33 or raw[0] not in (2, 3):
        return [f"public key {public_key!r} is not a 33-byte compressed point"]
    return []


def check_signature(delivery, content):
    headers = delivery["headers"]
    timestamp = header(headers, "BIZ_TIMESTAMP")
    signature = header(headers, "BIZ_RESP_SIGNATURE")
    if timestamp is None or signature is None:
        return ["BIZ_TIMESTAMP or BIZ_RESP_SIGNATURE header missing"]

    problems = []
    for underscored, hyphenated, value in [
        ("BIZ_TIMESTAMP", "Biz-Timestamp", timestamp),
        ("BIZ_RESP_SIGNATURE", "Biz-Resp-Signature", signature),
    ]:
        copy = header(headers, hyphenated)
        if copy is not None and copy != value:
            problems.append(f"{hyphenated} {copy!r} differs from {underscored} {value!r}")

    if not (timestamp.isdigit() and len(timestamp) == 13):
        problems.append(f"timestamp {timestamp!r} is not Unix milliseconds")
        return problems

    public_key = delivery["public_key_hex"]
    if not sdk_verifies("%s|%s" % (content, timestamp), signature, public_key):
        problems.append("cobo_custody refuses the signature")
    if sdk_verifies("%s|%s" % (content, int(timestamp) + 1), signature, public_key):
        problems.append("cobo_custody accepts the signature under another timestamp")
    if sdk_verifies("%s |%s" % (content, timestamp), signature, public_key):
        problems.append("cobo_custody accepts the signature over a changed body")
    return problems


def check_body(content):
    try:
        parsed = json.loads(content)
    except json.JSONDecodeError as error:
        return [f"the body is not JSON: {error}"]
    if not isinstance(parsed, dict):
        return ["the body is not a JSON object"]
    if json.dumps(parsed) != content:
        return ["the body is not in the form Python's json.dumps writes"]
    return []


def check(delivery):
    body = base64.b64decode(delivery["body_b64"], validate=True)
    try:
        content = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return [f"the body is not UTF-8, as the SDK reads it: {error}"]
    return (
        check_key(delivery["public_key_hex"])
        + check_signature(delivery, content)
        + check_body(content)
    )


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
        label = delivery.get("label", "")
        problems = check(delivery)
        if problems:
            failed += 1
        for problem in problems:
            print(f"delivery {index} ({label}): {problem}", file=sys.stderr)
        if not problems:
            print(f"delivery {index} ({label}): verified by cobo_custody")

    if failed:
        print(f"{failed} of {len(deliveries)} deliveries do not conform", file=sys.stderr)
        return 1
    print(f"all {len(deliveries)} deliveries verified by cobo_custody")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
