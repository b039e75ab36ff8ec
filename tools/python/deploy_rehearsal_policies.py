#!/usr/bin/env python3
"""make deploy-rehearsal, policies: the template's IAM, key and queue policies, and the policy
JSON docs/security.md tells people to attach, as AWS evaluates them.

1. template.yaml, with real parameters (four sets: IAM straight to RDS, RDS Proxy, and a queue
   the team already has with its own key, in this account and in another), resolved
   as AWS::LanguageExtensions does (tools/python/e2e.py's resolver), then through SAM's own transform
   (samtranslator, pinned in .venv/tools), then every intrinsic resolved to the physical names
   and ARNs CloudFormation would give (a stack id, queue URLs, key ids: made up, shaped as AWS's).
2. The AWS calls the code makes: every `.send()` of an AWS SDK client in src/ and
   crates/*/src, and the token signer's rds-db:connect. Each must be in CALLS below (an IAM
   action and who makes it on what) or in LOCAL_ONLY; a new call in neither fails the check.
   With these parameters (the template's defaults otherwise) no function reserves
   concurrency: a new account's quota refuses any reservation.
3. Each principal the guide names asks for each call it makes: the function, the maintenance
   function, an operator, a producer in this account and one in another, a masking-key reader.
   The expected answer is Allowed. Then the opposite: principals the guide does not name (an
   administrator of this account, anyone in another account) are denied the raw-data key and so
   the queues' contents and the masking key; and every SQS request without TLS is denied.
4. The questions go to @cloud-copilot/iam-simulate (tools/deploy-rehearsal/simulate.mjs), an
   offline evaluator of identity, resource and KMS key policies with conditions and
   cross-account rules. It is AGPL-3.0: a test tool only, never shipped.
5. With an existing queue (ExistingQueueArn, ExistingQueueKmsKeyArn) the queue's policy and its
   key's policy are the team's: the evaluator gets the statements docs/security.md tells the
   team to add ("A queue you already have"), beside a key policy that delegates nothing else,
   and asks that the function receives, deletes and decrypts, and that nobody unnamed does.

Usage: deploy_rehearsal_policies.py (run by scripts/deploy-rehearsal.sh policies).
"""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import condition_value, resolved_template  # noqa: E402

logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its metrics warning, not ours

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
STACK = "login-etl"
STACK_UUID = "5f0c3e10-9a5b-11ef-8b1a-0a1b2c3d4e5f"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/{STACK_UUID}"
SUFFIX = "1A2B3C4D5E6F"  # what CloudFormation appends to generated names

OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/oncall"
PRODUCER = f"arn:aws:iam::{ACCOUNT}:role/checkout-service"
FOREIGN_PRODUCER = f"arn:aws:iam::{OTHER_ACCOUNT}:role/mobile-backend"
MASKING_KEY_READER = f"arn:aws:iam::{ACCOUNT}:role/fraud-team"
ADMINISTRATOR = f"arn:aws:iam::{ACCOUNT}:role/administrator"
FOREIGN_ADMINISTRATOR = f"arn:aws:iam::{OTHER_ACCOUNT}:role/administrator"
DB_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:login-etl/db-AbCdEf"
DB_SECRET_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b0c0d0e-1111-2222-3333-444455556666"
OWNER_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:login-etl/db-owner-GhIjKl"
# The account of a team's queue in another account: neither the stack's nor OTHER_ACCOUNT, whose
# administrator stands for "anyone in another account" and must be denied.
QUEUE_ACCOUNT = "777788889999"

COMMON = {
    "DbSecretArn": DB_SECRET,
    "DbSecretKmsKeyArn": DB_SECRET_KEY,
    "SubnetIds": "subnet-0a1b2c3d,subnet-0e1f2a3b",
    "SecurityGroupIds": "sg-0a1b2c3d4e5f",
    "OperatorPrincipalArns": OPERATOR,
    "ProducerPrincipalArns": f"{PRODUCER},{FOREIGN_PRODUCER}",
    "MaskingKeyReaderArns": MASKING_KEY_READER,
    "RetentionKeepMonths": "3",
    "MaintenanceDbSecretArn": OWNER_SECRET,
    "VaultPublicKey": "ab" * 32,
    "DbCaBundleLayerArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:rds-ca:1",
}
PARAMETER_SETS = {
    "IAM straight to RDS": {**COMMON, "DbResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY0", "DbInstanceIdentifier": "login-etl-db"},
    "RDS Proxy": {**COMMON, "UseRdsProxy": "true", "DbInstanceIdentifier": "login-etl-db"},
    "existing queue in this account with its own key": {
        **COMMON,
        "DbResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY0",
        "ExistingQueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:checkout-logins",
        "ExistingQueueKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    },
    "existing queue in another account with its key": {
        **COMMON,
        "DbResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY0",
        "ExistingQueueArn": f"arn:aws:sqs:{REGION}:{QUEUE_ACCOUNT}:checkout-logins",
        "ExistingQueueKmsKeyArn": f"arn:aws:kms:{REGION}:{QUEUE_ACCOUNT}:key/6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
    },
    # Aurora: IAM authentication names the cluster's resource id (cluster-...), and the proxy
    # targets the cluster.
    "IAM straight to Aurora": {**COMMON, "DbResourceId": "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY0", "DbClusterIdentifier": "login-etl-aurora"},
    "RDS Proxy to Aurora": {**COMMON, "UseRdsProxy": "true", "DbClusterIdentifier": "login-etl-aurora"},
}

# The code's AWS calls: (service, SDK operation) -> the IAM action. Who makes each, on what, is
# in the principals' steps below; LOCAL_ONLY are calls no deployed principal makes.
CALLS = {
    ("sqs", "get_queue_attributes"): "sqs:GetQueueAttributes",  # Queue::open (every queue command), depth
    ("sqs", "receive_message"): "sqs:ReceiveMessage",  # drain, redrive
    ("sqs", "delete_message_batch"): "sqs:DeleteMessage",  # drain, redrive
    ("sqs", "send_message_batch"): "sqs:SendMessage",  # send, redrive
    ("sqs", "change_message_visibility_batch"): "sqs:ChangeMessageVisibility",  # the function's back-off
    ("secretsmanager", "get_secret_value"): "secretsmanager:GetSecretValue",  # cold start, recover
    ("rds-db", "connect"): "rds-db:connect",  # the function's IAM tokens (src/adapters/iam.rs)
}
LOCAL_ONLY = {  # `login-etl-cli setup`: LocalStack and make demo make their queues, key, secrets
    ("sqs", "get_queue_url"),
    ("sqs", "create_queue"),
    ("sqs", "set_queue_attributes"),
    ("secretsmanager", "describe_secret"),
    ("secretsmanager", "update_secret"),
    ("secretsmanager", "put_secret_value"),
    ("secretsmanager", "create_secret"),
    ("kms", "create_key"),
    ("kms", "enable_key_rotation"),
    ("kms", "create_alias"),
    ("kms", "schedule_key_deletion"),
    ("kms", "describe_key"),
}

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"  FAIL {what}")


def code_calls():
    """(service, operation) of every AWS SDK `.send()` in the shipped code, and rds-db:connect
    where the code signs IAM database tokens."""
    found = set()
    sources = [*ROOT.glob("src/**/*.rs"), *ROOT.glob("crates/*/src/**/*.rs")]
    for path in sources:
        if "test-support" in path.parts:
            continue
        text = path.read_text()
        services = set(re.findall(r"aws_sdk_([a-z0-9]+)::", text))
        for send in re.finditer(r"\.send\(\)", text):
            start = max(text.rfind(";", 0, send.start()), text.rfind("{", 0, send.start()), text.rfind("=>", 0, send.start()))
            operations = re.findall(r"\.\s*([a-z][a-z0-9_]*)\(\)", text[start : send.start()])
            if not operations:
                continue
            check(len(services) == 1, f"{path.relative_to(ROOT)}: one AWS SDK per file, found {sorted(services)}")
            found.add((next(iter(services), "?"), operations[0]))
        if '"rds-db"' in text or "rds-db:" in text:
            found.add(("rds-db", "connect"))
        # A request the code makes with its own HTTP client is no SDK call: each must be one
        # that needs no IAM permission, and say why.
        relative = str(path.relative_to(ROOT))
        if re.search(r"hyper_util::client|hyper::client|reqwest::", text):
            check(relative in OWN_HTTP_REQUESTS, f"{relative}: an HTTP request outside the AWS SDK; add it to OWN_HTTP_REQUESTS with why it needs no IAM permission, or ask for its permission")
    return found


# The shipped code's HTTP requests outside the AWS SDK, and why no IAM policy is asked about.
OWN_HTTP_REQUESTS = {
    "src/adapters/cfn_response.rs": "the maintenance function's answer to CloudFormation (SchemaMigration): a PUT to the "
    "presigned S3 URL CloudFormation sends, authorised by CloudFormation's signature in the URL, not by the function's role",
}


# --- the template, as CloudFormation would deploy it --------------------------------------


class ManagedPolicies:
    """SAM asks for managed policy ARNs only for a function's `Policies`, which ours do not use."""

    def load(self):
        return {}


def transformed(parameters):
    resolved, values, decided = resolved_template(parameters, "s3://login-etl-artifacts/bootstrap.zip")
    resolved["Transform"] = "AWS::Serverless-2016-10-31"
    os.environ["AWS_DEFAULT_REGION"] = REGION  # SAM reads the region from boto3's session
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": STACK, "AWS::StackId": STACK_ID}
    cfn = transform(resolved, {**values, **pseudo}, ManagedPolicies())
    return Resolver(cfn, values, decided)


class Resolver:
    """Resolves CloudFormation's intrinsics in a transformed template, with physical names
    shaped as CloudFormation's and AWS's."""

    def __init__(self, template, parameters, decided):
        self.template = template
        self.parameters = parameters
        self.decided = dict(decided)
        for name, node in template.get("Conditions", {}).items():
            if name not in self.decided:
                self.decided[name] = condition_value(node, template, parameters)
        self.resources = {
            name: spec
            for name, spec in template["Resources"].items()
            if "Condition" not in spec or self.decided[spec["Condition"]]
        }

    def prop(self, logical, name, default=None):
        value = self.resources[logical].get("Properties", {}).get(name)
        return default if value is None else self.value(value)

    def ref(self, name):
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::StackId": STACK_ID,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters and name in self.template.get("Parameters", {}):
            value = self.parameters[name]
            if self.template["Parameters"][name]["Type"] == "CommaDelimitedList":
                return value.split(",") if value else [""]
            return value
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.queue_name(name)}"
        if kind == "AWS::KMS::Key":
            return "7e1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-{SUFFIX[:6]}"
        if kind == "AWS::Lambda::Function":
            return self.prop(name, "FunctionName", f"{STACK}-{name}-{SUFFIX}")
        if kind == "AWS::Logs::LogGroup":
            return self.prop(name, "LogGroupName")
        if kind == "AWS::RDS::DBProxy":
            return self.prop(name, "DBProxyName")
        return f"{STACK}-{name}-{SUFFIX}"

    def queue_name(self, logical):
        return self.prop(logical, "QueueName", f"{STACK}-{logical}-{SUFFIX}")

    def get_att(self, logical, attribute):
        kind = self.resources[logical]["Type"]
        arns = {
            "AWS::SQS::Queue": lambda: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.queue_name(logical)}",
            "AWS::KMS::Key": lambda: f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.ref(logical)}",
            "AWS::Logs::LogGroup": lambda: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{self.ref(logical)}:*",
            "AWS::IAM::Role": lambda: f"arn:aws:iam::{ACCOUNT}:role{self.prop(logical, 'Path', '/')}{self.ref(logical)}",
            "AWS::Lambda::Function": lambda: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.ref(logical)}",
            "AWS::RDS::DBProxy": lambda: f"arn:aws:rds:{REGION}:{ACCOUNT}:db-proxy:prx-0123456789abcdef0",
        }
        if attribute == "QueueName":
            return self.queue_name(logical)
        if attribute == "Endpoint":
            return f"{self.ref(logical)}.proxy-abcdefghijkl.{REGION}.rds.amazonaws.com"
        if attribute in ("Arn", "DBProxyArn") and kind in arns:
            return arns[kind]()
        return f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical}"

    def value(self, node):
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), = node.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                text, names = (argument, {}) if isinstance(argument, str) else (argument[0], self.value(argument[1]))

                def one(match):
                    name = match.group(1)
                    if name in names:
                        return str(names[name])
                    if "." in name and name.split(".")[0] in self.resources:
                        return str(self.get_att(*name.split(".", 1)))
                    return str(self.ref(name))

                return re.sub(r"\$\{([^}!]+)\}", one, text)
            if key == "Fn::Join":
                return argument[0].join(str(v) for v in self.value(argument[1]))
            if key == "Fn::Split":
                return str(self.value(argument[1])).split(argument[0])
            if key == "Fn::Select":
                return self.value(argument[1])[int(self.value(argument[0]))]
            if key == "Fn::If":
                name, when_true, when_false = argument
                chosen = when_true if self.decided[name] else when_false
                return self.value(chosen)
        resolved = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v != "AWS::NoValue" and v != {"Ref": "AWS::NoValue"}}

    def role_policies(self, logical):
        """The role's inline policies, resolved and without AWS::NoValue statements."""
        documents = []
        for policy in self.resources[logical]["Properties"].get("Policies", []):
            document = self.value(policy["PolicyDocument"])
            document["Statement"] = [s for s in document["Statement"] if isinstance(s, dict) and s]
            documents.append({"name": policy["PolicyName"], "policy": document})
        return documents


def drop_no_value(node):
    if isinstance(node, list):
        return [drop_no_value(item) for item in node if item != "AWS::NoValue" and item != {"Ref": "AWS::NoValue"}]
    if isinstance(node, dict):
        return {k: drop_no_value(v) for k, v in node.items()}
    return node


def documented_policy(marker, outputs):
    """The JSON block after `<!-- deploy-rehearsal: MARKER -->` in docs/security.md, with its
    placeholders (<QueueArn>, <RawDataKeyArn>, <region>, ...) filled from the stack."""
    text = (ROOT / "docs" / "security.md").read_text()
    match = re.search(rf"<!-- deploy-rehearsal: {re.escape(marker)} -->\s*```json\n(.*?)```", text, re.S)
    if not match:
        check(False, f"docs/security.md has no JSON block marked <!-- deploy-rehearsal: {marker} -->")
        return {"Version": "2012-10-17", "Statement": []}
    body = match.group(1)
    for name, value in outputs.items():
        body = body.replace(f"<{name}>", value)
    left = re.findall(r"<[A-Za-z]+>", body)
    check(not left, f"docs/security.md {marker}: placeholders the stack does not fill: {left}")
    return json.loads(body)


# --- the questions --------------------------------------------------------------------------


def calls_on(resource, why, *actions):
    """`actions` on one `resource` for one reason, as steps (action, resource, why): a principal's
    calls that go together (a poll's receive, delete and attributes) are listed once."""
    return [(action, resource, why) for action in actions]


def account_of(arn):
    return arn.split(":")[4]


def teams_key_policy(key, documented_statement):
    """The key policy of a team's queue key: administration by its account, no cryptography
    for anyone (so no IAM policy alone grants it), and the statement the guide has them add."""
    administration = {
        "Sid": "AdministrationByTheAccount",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_of(key)}:root"},
        "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:EnableKey", "kms:DisableKey"],
        "Resource": "*",
    }
    return {"Version": "2012-10-17", "Statement": [administration, documented_statement]}


def main():
    found = code_calls()
    unknown = sorted(found - set(CALLS) - LOCAL_ONLY)
    check(not unknown, f"AWS calls in the code that no principal's check covers (add them to CALLS): {unknown}")
    stale = sorted((set(CALLS) | LOCAL_ONLY) - found)
    check(not stale, f"calls in CALLS/LOCAL_ONLY the code no longer makes: {stale}")
    asked_actions = set()
    questions = []
    for setting, parameters in PARAMETER_SETS.items():
        stack = transformed(parameters)
        # A new account's concurrency quota (often 10, of which Lambda keeps 100 unreserved:
        # none to give) refuses any reservation, and the stack rolls back.
        for name, spec in stack.resources.items():
            if spec["Type"] == "AWS::Lambda::Function":
                reserved = spec["Properties"].get("ReservedConcurrentExecutions")
                check(reserved is None, f"[{setting}] {name} reserves concurrency ({reserved}) by default")
        questions += stack_questions(setting, stack, parameters, asked_actions)
        # The proxy's target: an RDS instance, or an Aurora cluster (DBClusterIdentifiers).
        for name, spec in stack.resources.items():
            if spec["Type"] == "AWS::RDS::DBProxyTargetGroup":
                props = stack.value(spec["Properties"])
                want = ({"DBClusterIdentifiers": [parameters["DbClusterIdentifier"]]} if parameters.get("DbClusterIdentifier")
                        else {"DBInstanceIdentifiers": [parameters["DbInstanceIdentifier"]]})
                got = {k: props[k] for k in ("DBClusterIdentifiers", "DBInstanceIdentifiers") if k in props}
                check(got == want, f"[{setting}] {name} targets {got}, expected {want}")
    for (service, operation), action in CALLS.items():
        check(action in asked_actions, f"{service} {operation} ({action}): no principal asks for it")
    answers = simulate(questions)
    for question, answer in zip(questions, answers):
        ok = answer["result"] == question["expect"]
        detail = f" ({answer.get('errors')})" if answer.get("errors") else ""
        check(ok, f"{question['what']}: expected {question['expect']}, got {answer['result']}{detail}")
    allowed = sum(1 for q in questions if q["expect"] == "Allowed")
    print(
        f"deploy-rehearsal: policies: {len(questions)} questions to iam-simulate over {len(PARAMETER_SETS)} parameter sets "
        f"({allowed} must be allowed, {len(questions) - allowed} denied); {len(found)} AWS calls in the code, "
        f"{len(found & LOCAL_ONLY)} of them local set-up only"
    )
    if failures:
        print(f"deploy-rehearsal: policies: {len(failures)} FAILED", file=sys.stderr)
        sys.exit(1)


def simulate(questions):
    script = ROOT / "tools" / "deploy-rehearsal" / "simulate.mjs"
    done = subprocess.run(
        ["node", str(script)], input=json.dumps([q["simulation"] for q in questions]), capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"deploy-rehearsal: simulate.mjs failed: {done.stderr}")
    return json.loads(done.stdout)


def stack_questions(setting, stack, parameters, asked_actions):
    res = stack.resources
    existing_queue = parameters.get("ExistingQueueArn", "")
    check(("LoginQueue" in res) != bool(existing_queue), f"[{setting}] LoginQueue is created exactly when no ExistingQueueArn is given")
    queue = existing_queue or stack.get_att("LoginQueue", "Arn")
    dlq = stack.get_att("LoginDeadLetterQueue", "Arn")
    raw_key = stack.get_att("RawDataKey", "Arn")
    queue_key = parameters.get("ExistingQueueKmsKeyArn") or raw_key
    masking_key = stack.ref("MaskingKeySecret")
    outputs = {
        "QueueArn": queue,
        "DeadLetterQueueArn": dlq,
        "RawDataKeyArn": raw_key,
        "MaskingKeySecretArn": masking_key,
        "AccountId": ACCOUNT,
        "region": REGION,
    }
    resource_policies = {raw_key: stack.value(res["RawDataKey"]["Properties"]["KeyPolicy"])}
    if existing_queue:
        # The team's: its queue policy and its key's policy, with what the guide has them add.
        resource_policies[queue] = documented_policy("existing-queue-policy", outputs)
        resource_policies[queue_key] = teams_key_policy(queue_key, documented_policy("existing-queue-key-statement", outputs))
    for name, spec in res.items():
        if spec["Type"] == "AWS::SQS::QueuePolicy":
            document = drop_no_value(stack.value(spec["Properties"]["PolicyDocument"]))
            document["Statement"] = [s for s in document["Statement"] if isinstance(s, dict)]
            for url in stack.value(spec["Properties"]["Queues"]):
                resource_policies[f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[1]}"] = document
    secret_keys = {masking_key: raw_key, DB_SECRET: DB_SECRET_KEY, OWNER_SECRET: DB_SECRET_KEY}
    # The customer managed key of the database secrets is the deployer's own, with AWS's
    # default key policy: the account's IAM policies decide.
    resource_policies[DB_SECRET_KEY] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}],
    }
    queues_by_key = {queue: queue_key, dlq: raw_key}
    function_role = stack.get_att("LoginEtlRole", "Arn")
    principals = {
        "the function": (function_role, stack.role_policies("LoginEtlRole")),
        "the maintenance function": (stack.get_att("MaintenanceRole", "Arn"), stack.role_policies("MaintenanceRole")),
        "an operator": (OPERATOR, [{"name": "docs", "policy": documented_policy("operator-policy", outputs)}]),
        "a producer (same account)": (PRODUCER, [{"name": "docs", "policy": documented_policy("producer-policy", outputs)}]),
        "a producer (another account)": (FOREIGN_PRODUCER, [{"name": "docs", "policy": documented_policy("producer-policy", outputs)}]),
        "a masking-key reader": (MASKING_KEY_READER, [{"name": "docs", "policy": documented_policy("masking-key-reader-policy", outputs)}]),
    }
    everything = [{"name": "AdministratorAccess", "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]
    principals["an administrator (not named)"] = (ADMINISTRATOR, everything)
    principals["anyone in another account (not named)"] = (FOREIGN_ADMINISTRATOR, everything)

    log_stream = lambda group: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:2026/12/07/[$LATEST]0123456789abcdef"  # noqa: E731
    # Who makes which call, on what (the commands in parentheses), and the calls AWS's services
    # make as the principal: Lambda's event source mapping polls as the function's role, SQS and
    # Secrets Manager call KMS as the caller.
    sending = calls_on(queue, "send", "sqs:GetQueueAttributes", "sqs:SendMessage")
    steps = {
        "the function": [
            *calls_on(queue, "event source mapping", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
            ("sqs:ChangeMessageVisibility", queue, "back-off of failed records"),
            ("secretsmanager:GetSecretValue", DB_SECRET, "cold start"),
            ("secretsmanager:GetSecretValue", masking_key, "cold start"),
            *calls_on(log_stream(stack.ref("LoginEtlLogGroup")), "logging", "logs:CreateLogStream", "logs:PutLogEvents"),
        ],
        "the maintenance function": [
            ("secretsmanager:GetSecretValue", OWNER_SECRET, "cold start"),
            ("sqs:SendMessage", stack.get_att("MaintenanceDeadLetterQueue", "Arn"), "a failed run"),
            ("logs:PutLogEvents", log_stream(stack.ref("MaintenanceLogGroup")), "logging"),
        ],
        "an operator": [
            ("sqs:GetQueueAttributes", queue, "send, depth"),
            ("sqs:SendMessage", queue, "send, redrive"),
            ("sqs:GetQueueAttributes", dlq, "depth, redrive"),
            ("sqs:ReceiveMessage", dlq, "redrive, aws sqs receive-message"),
            ("sqs:DeleteMessage", dlq, "redrive"),
        ],
        "a producer (same account)": sending,
        "a producer (another account)": sending,
        "a masking-key reader": [("secretsmanager:GetSecretValue", masking_key, "recover")],
    }
    if existing_queue:
        # Sending to the team's queue is the team's business (its producers, its key): operators
        # keep the stack's dead-letter queue, producers are not asked here.
        steps["an operator"] = [step for step in steps["an operator"] if step[1] != queue]
        del steps["a producer (same account)"], steps["a producer (another account)"]
    if parameters.get("DbResourceId"):
        steps["the function"].append(
            ("rds-db:connect", f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{parameters['DbResourceId']}/login_loader", "IAM token")
        )
    if parameters.get("UseRdsProxy") == "true":
        steps["the function"].append(("rds-db:connect", f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:prx-0123456789abcdef0/login_loader", "IAM token"))

    questions = []

    def ask(who, action, resource, expect, why, context=None):
        principal, policies = principals[who]
        variables = {
            "aws:SecureTransport": "true",
            "aws:PrincipalArn": principal,
            "aws:PrincipalAccount": account_of(principal),
            **(context or {}),
        }
        questions.append(
            {
                "what": f"[{setting}] {who}: {action} on {resource.rsplit(':', 1)[-1]} ({why})",
                "expect": expect,
                "simulation": {
                    "request": {
                        "principal": principal,
                        "action": action,
                        "resource": {"resource": resource, "accountId": account_of(resource) or ACCOUNT},
                        "contextVariables": variables,
                    },
                    "identityPolicies": policies,
                    "serviceControlPolicies": [],
                    "resourceControlPolicies": [],
                    "resourcePolicy": resource_policies.get(resource),
                },
            }
        )

    def kms(who, action, key, service, expect, why, context=None):
        ask(who, action, key, expect, why, {"kms:ViaService": f"{service}.{REGION}.amazonaws.com", "kms:CallerAccount": account_of(principals[who][0]), **(context or {})})

    for who, calls in steps.items():
        for action, resource, why in calls:
            asked_actions.add(action)
            ask(who, action, resource, "Allowed", why)
            service = action.split(":")[0]
            if service == "sqs":
                # Without TLS: the queue policies deny it, whoever asks.
                if resource in resource_policies:
                    ask(who, action, resource, "ExplicitlyDenied", why + ", over plain HTTP", {"aws:SecureTransport": "false"})
                key = queues_by_key.get(resource)
                if key and action == "sqs:SendMessage":
                    kms(who, "kms:GenerateDataKey", key, "sqs", "Allowed", why + ": SQS encrypts")
                    kms(who, "kms:Decrypt", key, "sqs", "Allowed", why + ": SQS reuses a data key")
                if key and action == "sqs:ReceiveMessage":
                    kms(who, "kms:Decrypt", key, "sqs", "Allowed", why + ": SQS decrypts")
            if action == "secretsmanager:GetSecretValue":
                kms(who, "kms:Decrypt", secret_keys[resource], "secretsmanager", "Allowed", why + ": Secrets Manager decrypts",
                    {"kms:EncryptionContext:SecretARN": resource})

    # The opposite: nobody the guide does not name gets the raw data or the masking key.
    for who in ("an administrator (not named)", "anyone in another account (not named)", "a producer (same account)"):
        kms(who, "kms:Decrypt", raw_key, "secretsmanager", "ImplicitlyDenied", "the masking key",
            {"kms:EncryptionContext:SecretARN": masking_key, "kms:EncryptionContext:SecretVersionId": "b1c2d3e4-0000-4000-8000-000000000000"})
    for who in ("an administrator (not named)", "anyone in another account (not named)", "a masking-key reader"):
        kms(who, "kms:Decrypt", raw_key, "sqs", "ImplicitlyDenied", "reading the queues' raw events")
    for who in ("an administrator (not named)", "anyone in another account (not named)", "an operator"):
        kms(who, "kms:Decrypt", raw_key, "secretsmanager", "ImplicitlyDenied", "the masking key",
            {"kms:EncryptionContext:SecretARN": masking_key, "kms:EncryptionContext:SecretVersionId": "b1c2d3e4-0000-4000-8000-000000000000"})
    kms("an administrator (not named)", "kms:Decrypt", raw_key, "kms", "ImplicitlyDenied", "the key directly, not through a service")
    kms("the function", "kms:Decrypt", raw_key, "kms", "ImplicitlyDenied", "the key directly, not through a service")
    ask("anyone in another account (not named)", "sqs:SendMessage", queue, "ImplicitlyDenied", "sending without being a producer")
    ask("anyone in another account (not named)", "sqs:ReceiveMessage", queue, "ImplicitlyDenied", "receiving")
    ask("a producer (another account)", "sqs:ReceiveMessage", queue, "ImplicitlyDenied", "a producer never receives")
    if existing_queue:
        # The team's key and queue: the function through SQS only; nobody the guide's statements
        # do not name, whatever their own IAM policies allow.
        for who in ("an administrator (not named)", "anyone in another account (not named)", "an operator"):
            kms(who, "kms:Decrypt", queue_key, "sqs", "ImplicitlyDenied", "the team's queue key, not named in its key policy")
        kms("the function", "kms:Decrypt", queue_key, "kms", "ImplicitlyDenied", "the team's queue key directly, not through SQS")
        kms("the function", "kms:GenerateDataKey", queue_key, "sqs", "ImplicitlyDenied", "the function never sends to the team's queue")
        ask("the function", "sqs:SendMessage", queue, "ImplicitlyDenied", "the function never sends to the team's queue")
        # The stack's key no longer covers any queue the function reads.
        kms("the function", "kms:Decrypt", raw_key, "sqs", "ImplicitlyDenied", "the raw-data key through SQS: it reads no stack queue")
        ask("anyone in another account (not named)", "sqs:DeleteMessage", queue, "ImplicitlyDenied", "deleting from the team's queue")
    return questions


if __name__ == "__main__":
    main()
