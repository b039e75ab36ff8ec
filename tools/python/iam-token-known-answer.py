#!/usr/bin/env python3
"""Prints the RDS IAM auth token boto3 makes for the fixed inputs of src/adapters/iam.rs's known-answer
test, so that test's expected value (tests/data/iam-token-known-answer.txt) can be re-derived.

Usage: tools/python/iam-token-known-answer.py [--check FILE]   (needs boto3: make test-iam runs it with
the pinned tools venv's Python). --check exits 1 when FILE holds a different token.
"""
import contextlib
import datetime
import sys
from unittest import mock

import boto3
import botocore.auth

try:
    import botocore.crt.auth as crt_auth
except ImportError:  # no awscrt
    crt_auth = None

SIGNED_AT = datetime.datetime(2026, 11, 24, 3, 0, 0, tzinfo=datetime.timezone.utc)  # 1795489200


def token() -> str:
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token="session/token+with=chars",
        region_name="eu-west-1",
    )
    rds = session.client("rds")
    # botocore signs with awscrt when that is installed, with its own signer otherwise.
    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(botocore.auth, "get_current_datetime", return_value=SIGNED_AT.replace(tzinfo=None)))
        if crt_auth is not None:
            patches.enter_context(mock.patch.object(crt_auth, "get_current_datetime", return_value=SIGNED_AT))
        return rds.generate_db_auth_token(
            DBHostname="proxy.example.eu-west-1.rds.amazonaws.com", Port=5432, DBUsername="login loader"
        )


if __name__ == "__main__":
    made = token()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        with open(sys.argv[2]) as f:
            expected = f.read().strip()
        if made != expected:
            print(f"iam-token-known-answer: boto3 now makes\n  {made}\nbut {sys.argv[2]} holds\n  {expected}", file=sys.stderr)
            sys.exit(1)
        print("iam-token-known-answer: boto3 agrees with the test's expected token")
    else:
        print(made)
