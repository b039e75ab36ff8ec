#!/usr/bin/env python3
"""make deploy-rehearsal, cli: every `aws` command docs/deploy.md gives, run as written with
the real AWS CLI (pinned: uv.lock's localstack group, .venv/localstack/bin/aws) against the
`make up` LocalStack, so a missing required flag, a misspelt option or a --query that prints
nothing (or a quoted ARN where a value is to be pasted) fails here instead of in a first deploy.

The commands come from the guide's text: each inline code span holding `aws <service> <op>`
(a span may wrap lines; `curl ... && aws ...` and `X=$(aws ...)` keep only the aws part), and
each fenced block marked `<!-- deploy-rehearsal: aws-NAME -->`. Placeholders (<role>, <sg>,
<endpoint>, ...) get rehearsal values; an unknown one fails. Every command must be in COMMANDS
below, which says whether LocalStack answers it (then it must succeed, and a --query with
--output text must print a bare value) or cannot (then the CLI must still accept the command
and send it: LocalStack's "not implemented" / "not enabled" answer, never a usage error).
The smoke test at the end of the guide runs in make e2e, against a deployed stack.

Usage: deploy_rehearsal_cli.py (run by scripts/deploy-rehearsal.sh cli; needs AWS_ENDPOINT_URL)
"""

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"
AWS = ROOT / ".venv" / "localstack" / "bin" / "aws"
REGION = "eu-central-1"

PLACEHOLDERS = {
    "<role>": "login-etl-rehearsal-oncall",
    "<sg>": "sg-0a1b2c3d4e5f67890",
    "<instance-id>": "i-0123456789abcdef0",
    "<endpoint>": "login-etl.abcdefghijkl.us-east-1.rds.amazonaws.com",
    "<id>": "login-etl-db",
    "<cluster-id>": "login-etl-aurora",
    "<vpc-id>": "vpc-0a1b2c3d4e5f67890",
    "<route-table-id>": "rtb-0a1b2c3d4e5f67890",
    "<region>": REGION,
    "…": "rehearsal-password",
}

# "answers": LocalStack answers it, so it must succeed. Otherwise the reason LocalStack cannot,
# and the text its refusal contains (proof that the CLI accepted and sent the request).
COMMANDS = {
    "aws sts get-caller-identity": "answers",
    "aws iam get-role": "answers",
    "aws secretsmanager create-secret": "answers",
    "aws lambda publish-layer-version": "answers",
    "aws lambda get-account-settings": "answers",
    "aws ec2 authorize-security-group-ingress": ("EC2 is not among the make up LocalStack's services", "not enabled"),
    "aws ec2 create-vpc-endpoint": ("EC2 is not among the make up LocalStack's services", "not enabled"),
    "aws ssm start-session": ("LocalStack does not implement SSM StartSession", "not been implemented"),
    "aws rds modify-db-instance": ("RDS is not in LocalStack's community edition", "not yet been emulated"),
    "aws rds describe-db-instances": ("RDS is not in LocalStack's community edition", "not yet been emulated"),
    "aws rds modify-db-cluster": ("RDS is not in LocalStack's community edition", "not yet been emulated"),
    "aws rds describe-db-clusters": ("RDS is not in LocalStack's community edition", "not yet been emulated"),
}


def aws_commands(text):
    """(command, source) for every aws command of the guide, in order."""
    found = []
    fenced = re.compile(r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```", re.S | re.M)
    for marker in re.finditer(r"<!-- deploy-rehearsal: (aws-[a-z-]+) -->\s*```[a-z]*\n(.*?)```", text, re.S):
        for line in marker.group(2).splitlines():
            if line.strip().startswith("aws "):
                found.append((line.strip(), marker.group(1)))
    prose = fenced.sub("", text)
    for span in re.finditer(r"`([^`]+)`", prose):
        flat = re.sub(r"\s+", " ", span.group(1)).strip()
        for start in re.finditer(r"(?:^|(?<=[\s(&;|]))aws [a-z0-9-]+ [a-z0-9-]+", flat):
            command = command_at(flat, start.start())
            # A command's name in a sentence (`aws sqs receive-message` on the DLQ) is no
            # command; one on the stack's names ($stack) is the smoke test's (make e2e).
            if len(command.split()) > 3 and "$stack" not in command:
                found.append((command, "inline"))
    return found


def command_at(text, start):
    """The command from `start` to an unquoted &&, ;, | or unbalanced ), or the end."""
    quote, depth, i = None, 0, start
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        elif c in ";|" or text.startswith("&&", i):
            break
        i += 1
    return text[start:i].strip()


def main():
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("deploy_rehearsal_cli.py: AWS_ENDPOINT_URL must name the LocalStack (make up)")
    failures = []
    commands = aws_commands(GUIDE.read_text())
    work = Path(tempfile.mkdtemp(prefix="login-etl-rehearsal-cli."))
    # What the guide's commands expect to find: the layer's zip, the vault key file.
    with zipfile.ZipFile(work / "rds-ca.zip", "w") as archive:
        archive.writestr("global-bundle.pem", "-----BEGIN CERTIFICATE-----\nrehearsal\n-----END CERTIFICATE-----\n")
    (work / "vault.key").write_text("ab" * 32 + "\n")
    env = {**os.environ, "AWS_PAGER": ""}
    # Every call goes to LocalStack, whatever the command or the CLI's endpoint rules say, and
    # in a region of its own: the guide's secret names (login-etl/db) are also what
    # `login-etl-cli setup` makes for make demo in us-east-1, which this must not overwrite.
    preamble = f'aws() {{ "{AWS}" --endpoint-url "{endpoint}" --region {REGION} "$@"; }}\n'

    def shell(script):
        return subprocess.run(["bash", "-c", preamble + script], cwd=work, env=env, capture_output=True, text=True)

    # The state the commands read: the role of step 1; no secrets left from an earlier run.
    shell(
        f"aws iam create-role --role-name {PLACEHOLDERS['<role>']} --assume-role-policy-document "
        "'{\"Version\":\"2012-10-17\",\"Statement\":[]}' >/dev/null 2>&1"
    )
    for name in re.findall(r"create-secret --name (\S+)", " ".join(c for c, _ in commands)):
        shell(f"aws secretsmanager delete-secret --secret-id {name} --force-delete-without-recovery >/dev/null 2>&1")

    answered = cannot = 0
    for command, source in commands:
        key = " ".join(command.split()[:3])
        expected = COMMANDS.get(key)
        if expected is None:
            failures.append(f"{command}: not in COMMANDS (does LocalStack answer it?)")
            continue
        concrete = command
        for placeholder, value in PLACEHOLDERS.items():
            concrete = concrete.replace(placeholder, value)
        left = re.findall(r"<[a-z/-]+>", concrete)
        if left:
            failures.append(f"{command}: placeholders without a rehearsal value: {left}")
            continue
        done = shell(concrete)
        out, err = done.stdout.strip(), done.stderr.strip()
        usage = done.returncode == 2 or "arguments are required" in err or "Unknown options" in err or "Invalid choice" in err
        if usage:
            failures.append(f"{command}: the AWS CLI refuses it: {err.splitlines()[-1] if err else done.returncode}")
            continue
        if expected == "answers":
            if done.returncode != 0:
                failures.append(f"{command}: failed against LocalStack: {err}")
                continue
            if "--query" in command and source == "inline" and "--output text" not in command:
                failures.append(f"{command}: a value to paste needs --output text (it prints {out!r})")
            if "--output text" in command and (not out or out == "None" or '"' in out):
                failures.append(f"{command}: --query/--output text printed {out!r}, not a value")
            answered += 1
            print(f"  ok   {key} ({source}): {out.splitlines()[0][:100] if out else 'no output'}")
        else:
            reason, refusal = expected
            if done.returncode == 0 or refusal not in err:
                failures.append(f"{command}: expected LocalStack's refusal ({refusal!r}), got rc {done.returncode}: {err or out}")
                continue
            cannot += 1
            print(f"  sent {key} ({source}): the CLI accepts it; LocalStack cannot answer: {reason}")
    for name in re.findall(r"create-secret --name (\S+)", " ".join(c for c, _ in commands)):
        shell(f"aws secretsmanager delete-secret --secret-id {name} --force-delete-without-recovery >/dev/null 2>&1")
    shell(f"aws iam delete-role --role-name {PLACEHOLDERS['<role>']} >/dev/null 2>&1")
    for failure in failures:
        print(f"  FAIL {failure}", file=sys.stderr)
    print(f"deploy-rehearsal: cli: {len(commands)} aws commands from docs/deploy.md: {answered} answered by LocalStack, {cannot} sent but not answerable there")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
