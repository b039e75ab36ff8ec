#!/usr/bin/env python3
"""`make e2e`'s deploy, run and checks (scripts/e2e.sh prepares what they need): template.yaml
deployed into LocalStack through CloudFormation change sets (what `aws cloudformation deploy`
does), and LocalStack's own SQS event source mapping driving the function in containers.

1. The template, as AWS's AWS::LanguageExtensions would leave it: every `Fn::If` whose
   condition the parameters decide is resolved (and an `AWS::NoValue` branch dropped) before
   LocalStack's transforms run. That is all that is resolved here: LocalStack's own
   LanguageExtensions resolves only Fn::ForEach, Fn::Length and Fn::ToJsonString, and SAM
   then refuses the function with both branches of ComputeMode ("Cannot specify
   'CapacityProviderConfig' and 'VpcConfig' together"). The Transform stays, so LocalStack
   runs both transforms itself; the function's code is the bootstrap, zipped, in LocalStack's S3.
2. Three stacks (change sets made one at a time, executed at once): the default one, and one per scaling mode LocalStack can create
   (provisioned pollers, retention's schedule). RDS Proxy and Managed Instances it cannot
   (docs/development.md, "make e2e", has the errors).
3. Each stack's resources as created (describe calls), against the parameters it was given.
4. The default stack's run: a producer (login-etl-cli send, any SQS client) sends E2E_COUNT
   messages to the stack's queue; rows, dead letters and the reasons in the function's own
   EMF documents (CloudWatch Logs) are counted until every message has its fate.

Usage (scripts/e2e.sh sets the environment): e2e.py BOOTSTRAP CLI
Environment: AWS_ENDPOINT_URL, DATABASE_URL (the e2e database), E2E_COUNT, E2E_BAD_RATIO,
E2E_STACK_PREFIX, E2E_KEEP_STACKS=1 (leave the stacks), E2E_TIMEOUT (seconds for the run).
"""
import concurrent.futures
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import zipfile
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
REGION = os.environ.get("AWS_REGION", "us-east-1")
PREFIX = os.environ.get("E2E_STACK_PREFIX", "e2e")
COUNT = int(os.environ.get("E2E_COUNT", "1000"))
BAD_RATIO = float(os.environ.get("E2E_BAD_RATIO", "0.05"))
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "150"))
BUCKET = f"{PREFIX}-login-etl-artifacts"
# Each run's stacks have names of their own: a stack LocalStack failed to create may also fail
# to delete, and a name is never reused.
RUN = time.strftime("%H%M%S")

# The run's settings: the function as this host's architecture, and the template's minimum
# visibility timeout (18 s, 6 x a 3 s timeout) with one receive before the DLQ, so a malformed
# message is dead-lettered 18 s after it failed (at 2, 36 s: make test's budget). One is enough
# to see the partial batch response honoured: a record the function did not name as failed is
# deleted, one it named is not and moves to the DLQ at its next receive; had the mapping
# failed whole batches, their valid records would be dead-lettered too.
RUN_PARAMETERS = {"Architecture": "x86_64", "Timeout": "3", "VisibilityTimeout": "18", "MaxReceiveCount": "1"}
MODES = {
    "default": {},
    "pollers": {"SqsPollerMode": "Provisioned", "MinimumPollers": "1", "MaximumPollers": "2"},
    "retention": {"RetentionKeepMonths": "3"},
    # A queue the team already has, under its own key, made before the stack (team_queue):
    # ExistingQueueArn and ExistingQueueKmsKeyArn are filled in then.
    "existing-queue": {},
}
# Messages sent to the existing queue, after the main run (its rows are counted on their own).
EXISTING_QUEUE_COUNT = 20

client = lambda service: boto3.client(service, region_name=REGION)  # noqa: E731
failures = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


# --- the template -------------------------------------------------------------------------


class Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, ...) as their long forms."""


def _intrinsic(loader, suffix, node):
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


Loader.add_multi_constructor("!", _intrinsic)
NO_VALUE = object()


def condition_value(node, template, parameters):
    """A condition, from the parameters alone (every condition of template.yaml is)."""
    if isinstance(node, dict) and len(node) == 1:
        (key, argument), = node.items()
        evaluate = lambda n: condition_value(n, template, parameters)  # noqa: E731
        if key == "Condition":
            return evaluate(template["Conditions"][argument])
        if key == "Fn::Equals":
            return evaluate(argument[0]) == evaluate(argument[1])
        if key == "Fn::Not":
            return not evaluate(argument[0])
        if key == "Fn::And":
            return all(evaluate(a) for a in argument)
        if key == "Fn::Or":
            return any(evaluate(a) for a in argument)
        if key == "Fn::Join":
            values = evaluate(argument[1])
            return argument[0].join(values if isinstance(values, list) else [values])
        if key == "Ref":
            value = str(parameters[argument])
            if template["Parameters"][argument]["Type"] == "CommaDelimitedList":
                return value.split(",") if value else []
            return value
    return node if isinstance(node, (list, dict)) else str(node)


def resolve_ifs(node, decided):
    """Resolves Fn::If on the decided conditions and drops an AWS::NoValue branch, as AWS's
    AWS::LanguageExtensions does; everything else stays for LocalStack's transforms."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"]:
            name, when_true, when_false = node["Fn::If"]
            chosen = when_true if decided[name] else when_false
            if chosen == {"Ref": "AWS::NoValue"}:
                return NO_VALUE
            return resolve_ifs(chosen, decided)
        resolved = {key: resolve_ifs(value, decided) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve_ifs(item, decided) for item in node) if item is not NO_VALUE]
    return node


def resolved_template(parameters, code_uri):
    """template.yaml under `parameters` (over the defaults), its `Fn::If`s decided as
    AWS::LanguageExtensions does, every function's code at `code_uri`. Returns the template,
    the parameters' values and the conditions' values."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    values.update(parameters)
    decided = {name: condition_value(node, template, values) for name, node in template["Conditions"].items()}
    resolved = resolve_ifs({key: value for key, value in template.items() if key != "Conditions"}, decided)
    resolved["Conditions"] = template["Conditions"]
    for resource in resolved["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    return resolved, values, decided


def stack_template(parameters, code_uri):
    resolved, _, _ = resolved_template(parameters, code_uri)
    # LocalStack's change sets check every Ref before SAM's transform runs, and refuse SAM's
    # `!Ref <function>.Version` ("Unresolved resource dependencies"), which AWS's SAM resolves.
    # The code's version is then the uploaded code's name: the updates below change the owner's
    # secret instead.
    migration = resolved["Resources"].get("SchemaMigration", {}).get("Properties", {})
    if migration.get("CodeVersion") == {"Ref": "MaintenanceFunction.Version"}:
        migration["CodeVersion"] = code_uri
    return json.dumps(resolved)


# --- deploy -------------------------------------------------------------------------------


def create_change_set(name, parameters, code_uri):
    """`aws cloudformation deploy`'s first half: a change set, waited for. One at a time:
    LocalStack's transforms run while it is created."""
    cloudformation = client("cloudformation")
    started = time.monotonic()
    cloudformation.create_change_set(
        StackName=name,
        ChangeSetName=f"{name}-change-set",
        ChangeSetType="CREATE",
        TemplateBody=stack_template(parameters, code_uri),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        cloudformation.get_waiter("change_set_create_complete").wait(
            StackName=name, ChangeSetName=f"{name}-change-set", WaiterConfig={"Delay": 1}
        )
    except Exception as err:
        # The waiter says only FAILED; the change set says why.
        change_set = cloudformation.describe_change_set(StackName=name, ChangeSetName=f"{name}-change-set")
        raise RuntimeError(f"change set {change_set.get('Status')}: {change_set.get('StatusReason', err)}") from err
    return time.monotonic() - started


def execute(name, change_set_seconds):
    """Its second half: the change set executed, the stack waited for."""
    cloudformation = client("cloudformation")
    started = time.monotonic() - change_set_seconds
    cloudformation.execute_change_set(StackName=name, ChangeSetName=f"{name}-change-set")
    try:
        cloudformation.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    except Exception as err:
        events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
        reasons = sorted({
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason') or '(no reason given)'}"
            for e in events
            if e["ResourceStatus"] == "CREATE_FAILED" and e["LogicalResourceId"] != name
        })
        raise RuntimeError(f"{err}; {'; '.join(reasons)}") from err
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    resources = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    failed = [
        f"{r['LogicalResourceId']}: {r.get('ResourceStatusReason', '')}"
        for r in resources
        if not r["ResourceStatus"].endswith("COMPLETE")
    ]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    # LocalStack creates a type it does not emulate as a stand-in with no behaviour, and says so.
    fallbacks = sorted(
        f"{r['LogicalResourceId']} ({r['ResourceType']})" for r in resources if "not supported" in r.get("ResourceStatusReason", "")
    )
    return {
        "fallbacks": fallbacks,
        "name": name,
        "status": stack["StackStatus"],
        "seconds": time.monotonic() - started,
        "resources": resources,
        "failed": failed,
        "outputs": outputs,
    }


def upload_code(bootstrap):
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        zipped.writestr(info, Path(bootstrap).read_bytes())
    s3.put_object(Bucket=BUCKET, Key="login-etl.zip", Body=archive.getvalue())
    return f"s3://{BUCKET}/login-etl.zip"


# --- checks on what was created -----------------------------------------------------------


def code_variables():
    """The names Config and LogSettings read, from their own lists (src/config/mod.rs,
    src/telemetry.rs), which their unit tests hold to what the readers read."""
    names = set()
    for path, const in (("src/config/mod.rs", "CONFIG_VARIABLES"), ("src/telemetry.rs", "VARIABLES")):
        text = (ROOT / path).read_text()
        match = re.search(rf"const {const}: \[&(?:'static )?str; \d+\] = \[(.*?)\];", text, re.S)
        names.update(re.findall(r'"([A-Z0-9_]+)"', match.group(1)))
    return names


def physical(stack, logical):
    return next(r["PhysicalResourceId"] for r in stack["resources"] if r["LogicalResourceId"] == logical)


def check_default_stack(stack, parameters):
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    value = lambda name: parameters.get(name, str(template["Parameters"][name].get("Default", "")))  # noqa: E731
    outputs = stack["outputs"]
    function = outputs["FunctionArn"].rsplit(":", 1)[-1]
    key_arn = outputs["RawDataKeyArn"]
    sqs, lam = client("sqs"), client("lambda")

    mapping = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    check(len(mapping) == 1, f"one event source mapping on {function}")
    mapping = mapping[0]
    check(mapping["EventSourceArn"] == outputs["QueueArn"], "the mapping reads the stack's queue")
    check(mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], "the mapping reports batch item failures")
    check(str(mapping["BatchSize"]) == value("BatchSize"), f"the mapping's batch size is BatchSize ({value('BatchSize')})")
    check(
        str(mapping.get("MaximumBatchingWindowInSeconds", 0)) == value("MaximumBatchingWindowInSeconds"),
        f"the mapping's window is MaximumBatchingWindowInSeconds ({value('MaximumBatchingWindowInSeconds')} s)",
    )
    check(
        str(mapping.get("ScalingConfig", {}).get("MaximumConcurrency")) == value("MaximumConcurrency"),
        f"the mapping's MaximumConcurrency is the parameter's ({value('MaximumConcurrency')}; LocalStack's poller ignores it)",
    )

    queue = sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(queue.get("RedrivePolicy", "{}"))
    check(redrive.get("deadLetterTargetArn") == outputs["DeadLetterQueueArn"], "the queue redrives to the stack's DLQ")
    check(str(redrive.get("maxReceiveCount")) == value("MaxReceiveCount"), f"at MaxReceiveCount ({value('MaxReceiveCount')})")
    check(queue.get("VisibilityTimeout") == value("VisibilityTimeout"), f"the queue's visibility timeout is VisibilityTimeout ({value('VisibilityTimeout')} s)")
    check(queue.get("KmsMasterKeyId") == key_arn, "the queue uses the stack's key")
    check(dlq.get("KmsMasterKeyId") == key_arn, "the DLQ uses the stack's key")
    secret = client("secretsmanager").describe_secret(SecretId=outputs["MaskingKeySecretArn"])
    check(secret.get("KmsKeyId") == key_arn, "the masking-key secret uses the stack's key")

    configuration = lam.get_function_configuration(FunctionName=function)
    variables = set(configuration.get("Environment", {}).get("Variables", {}))
    unread = sorted(variables - code_variables())
    check(not unread, f"every variable the function is given is one Config reads ({len(variables)}){': not ' + str(unread) if unread else ''}")
    check("AWS_ENDPOINT_URL" not in variables, "the template sets no AWS_ENDPOINT_URL (LocalStack's own reaches the function)")
    check(configuration["Architectures"] == ["x86_64"], "the function is x86_64 (Architecture=x86_64, this host's)")
    return function


def check_alarms(stack, function, emitted):
    alarms = client("cloudwatch").describe_alarms(
        AlarmNames=[physical(stack, r["LogicalResourceId"]) for r in stack["resources"] if r["ResourceType"] == "AWS::CloudWatch::Alarm"]
    )["MetricAlarms"]
    own = [a for a in alarms if a["Namespace"] == "LoginEtl"]
    check(bool(own), f"{len(alarms)} alarms, {len(own)} on the function's own metrics")
    for alarm in own:
        check(alarm["MetricName"] in emitted, f"alarm on LoginEtl/{alarm['MetricName']}: a metric the function emitted")
    queues = {stack["outputs"][key].rsplit("/", 1)[-1] for key in ("QueueUrl", "DeadLetterQueueUrl")}
    for alarm in alarms:
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        if alarm["Namespace"] in ("LoginEtl", "AWS/Lambda"):
            check(dimensions.get("FunctionName") == function, f"alarm {alarm['Namespace']}/{alarm['MetricName']} names the stack's function")
        elif alarm["Namespace"] == "AWS/SQS":
            check(dimensions.get("QueueName") in queues, f"alarm AWS/SQS/{alarm['MetricName']} names one of the stack's queues ({dimensions.get('QueueName')})")


def check_mode(mode, stack, parameters):
    lam = client("lambda")
    function = stack["outputs"]["FunctionArn"].rsplit(":", 1)[-1]
    mapping = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"][0]
    variables = lam.get_function_configuration(FunctionName=function).get("Environment", {}).get("Variables", {})
    if mode == "pollers":
        pollers = mapping.get("ProvisionedPollerConfig", {})
        check(
            (str(pollers.get("MinimumPollers")), str(pollers.get("MaximumPollers"))) == (parameters["MinimumPollers"], parameters["MaximumPollers"]),
            f"provisioned pollers: the mapping has ProvisionedPollerConfig {pollers}",
        )
        check("ScalingConfig" not in mapping or not mapping["ScalingConfig"], "provisioned pollers: and no ScalingConfig")
    elif mode == "proxy":
        check(variables.get("DB_IAM_AUTH") == "true", "RDS Proxy: the function authenticates with IAM (DB_IAM_AUTH=true)")
        check(variables.get("DB_SECRET_ID", "") == "", "RDS Proxy: and reads no database secret")
        proxy = [r for r in stack["resources"] if r["LogicalResourceId"] == "LoginEtlDbProxy"]
        check(bool(proxy), f"RDS Proxy: the stack has LoginEtlDbProxy ({proxy[0]['ResourceStatus'] if proxy else 'absent'})")
        url = variables.get("DATABASE_URL", "")
        print(f"  note RDS Proxy: DATABASE_URL as LocalStack resolved it: {url or '(empty)'}")
    elif mode == "retention":
        maintenance = stack["outputs"].get("MaintenanceFunctionArn", "").rsplit(":", 1)[-1]
        check(bool(maintenance), "retention: the maintenance function exists")
        schedules = client("scheduler").list_schedules()["Schedules"]
        # SAM targets the alias AutoPublishAlias makes (`live`).
        mine = [s for s in schedules if s["Target"]["Arn"].endswith((f":{maintenance}", f":{maintenance}:live"))]
        check(len(mine) == 1, "retention: one EventBridge Scheduler schedule targets it")
        check(all(s.get("State") == "ENABLED" for s in mine), f"retention: the schedule is enabled ({[s.get('State') for s in mine]})")
        if mine:
            schedule = client("scheduler").get_schedule(Name=mine[0]["Name"], GroupName=mine[0].get("GroupName", "default"))
            check(schedule["ScheduleExpression"] == "cron(17 3 * * ? *)", f"retention: on MaintenanceSchedule ({schedule['ScheduleExpression']})")
            check(schedule["Target"].get("DeadLetterConfig", {}).get("Arn", "").endswith(":" + stack["outputs"]["MaintenanceDeadLetterQueueUrl"].rsplit("/", 1)[-1]), "retention: its dead letters go to the maintenance DLQ")
        env = lam.get_function_configuration(FunctionName=maintenance)["Environment"]["Variables"]
        check(env.get("LOGIN_ETL_TASK") == "maintenance" and env.get("RETENTION_KEEP_MONTHS") == parameters["RetentionKeepMonths"], "retention: the maintenance task and its months")


# --- a queue the team already has (docs/deploy.md, "Using a queue you already have") --------


def team_queue():
    """The team's queue, made outside any stack: SSE-KMS under a key of its own, the run's
    visibility timeout. Returns (url, arn, key arn)."""
    key = client("kms").create_key(Description=f"{PREFIX}-{RUN}: a team's own queue key")["KeyMetadata"]["Arn"]
    url = client("sqs").create_queue(
        QueueName=f"{PREFIX}-{RUN}-team-logins",
        Attributes={"KmsMasterKeyId": key, "VisibilityTimeout": RUN_PARAMETERS["VisibilityTimeout"]},
    )["QueueUrl"]
    arn = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, key


def check_existing_queue(stack, parameters, url, cli):
    """The stack reads the team's queue: no queue of its own, the mapping, the age alarm and
    the outputs on the team's; the guide's step 3 (the team's redrive policy to the stack's
    DLQ); then messages the team's producers send are loaded through LocalStack's mapping."""
    outputs, lam, sqs = stack["outputs"], client("lambda"), client("sqs")
    arn, name = parameters["ExistingQueueArn"], parameters["ExistingQueueArn"].rsplit(":", 1)[-1]
    logical = {r["LogicalResourceId"] for r in stack["resources"]}
    check("LoginQueue" not in logical and "LoginQueueRequiresTls" not in logical, "existing queue: the stack made no queue and no queue policy of its own")
    check("LoginDeadLetterQueue" in logical, "existing queue: the stack made its dead-letter queue")
    function = outputs["FunctionArn"].rsplit(":", 1)[-1]
    mappings = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    check([m["EventSourceArn"] for m in mappings] == [arn], f"existing queue: the one mapping reads the team's queue ({[m['EventSourceArn'] for m in mappings]})")
    check(outputs.get("QueueArn") == arn and outputs.get("QueueUrl", "").endswith(f"/{arn.split(':')[4]}/{name}"), "existing queue: the outputs name the team's queue")
    alarms = client("cloudwatch").describe_alarms(
        AlarmNames=[physical(stack, r["LogicalResourceId"]) for r in stack["resources"] if r["ResourceType"] == "AWS::CloudWatch::Alarm"]
    )["MetricAlarms"]
    age = [{d["Name"]: d["Value"] for d in a["Dimensions"]} for a in alarms if a["MetricName"] == "ApproximateAgeOfOldestMessage"]
    check(age == [{"QueueName": name}], f"existing queue: the age alarm watches the team's queue ({age})")
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": outputs["DeadLetterQueueArn"], "maxReceiveCount": RUN_PARAMETERS["MaxReceiveCount"]})},
    )
    before, _ = rows()
    subprocess.run([cli, "send", "--queue-url", url, "--count", str(EXISTING_QUEUE_COUNT), "--bad-ratio", "0", "--seed", "28"], check=True, capture_output=True)
    started = time.monotonic()
    while time.monotonic() - started < 60:
        loaded = rows()[0] - before
        if loaded >= EXISTING_QUEUE_COUNT and sum(depth(url)) == 0:
            break
        time.sleep(1)
    loaded, left = rows()[0] - before, depth(url)
    check(loaded == EXISTING_QUEUE_COUNT and sum(left) == 0,
          f"existing queue: {EXISTING_QUEUE_COUNT} messages sent to the team's queue, {loaded} rows loaded, queue {left} ({time.monotonic() - started:.1f} s)")


# --- migrate through the stack (SchemaMigration, docs/deploy.md step 4) -------------------


def psql(database, sql):
    url = urllib.parse.urlparse(os.environ["DATABASE_URL"])
    return subprocess.run(
        ["psql", "-At", "-v", "ON_ERROR_STOP=1", "-h", url.hostname, "-p", str(url.port or 5432), "-U", url.username or "postgres",
         database, "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def fresh_database(database):
    psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {database}")


def owner_secret(name, database):
    """A secret in the RDS format for the maintenance function: the e2e database's, with
    `database` as its dbname (the host is the one the function's containers reach)."""
    sm = client("secretsmanager")
    value = json.loads(sm.get_secret_value(SecretId=os.environ["E2E_DB_SECRET_ARN"])["SecretString"])
    value["dbname"] = database
    # The server trusts local connections and ignores it; the answers must never show it.
    value["password"] = OWNER_PASSWORD
    try:
        return sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=name, SecretString=json.dumps(value))
        return sm.describe_secret(SecretId=name)["ARN"]


def migrations_applied(database):
    """Successful migrations recorded in `database`, and whether user_logins exists."""
    out = psql(database, "select (select count(*) from _sqlx_migrations where success), to_regclass('public.user_logins') is not null"
               if psql(database, "select to_regclass('public._sqlx_migrations') is not null") == "t" else "select 0, false")
    count, table = out.split("|")
    return int(count), table == "t"


MIGRATIONS = len(list((ROOT / "migrations").glob("*.sql")))
OWNER_PASSWORD = "e2e-owner-password-never-shown"


def schema_databases():
    """The retention stack's databases, none migrated: created by the stack (A), after an
    update that points it at B, and C, which does not exist (a migrate that fails)."""
    base = urllib.parse.urlparse(os.environ["DATABASE_URL"]).path.lstrip("/")
    names = {key: f"{base}_schema_{key.lower()}" for key in "ABC"}
    for key in "AB":
        fresh_database(names[key])
    psql("postgres", f"DROP DATABASE IF EXISTS {names['C']} WITH (FORCE)")
    secrets = {key: owner_secret(f"{PREFIX}/login-etl/owner-{key}", name) for key, name in names.items()}
    return names, secrets


def point_at(stack, secret):
    """What an update of the stack with another MaintenanceDbSecretArn does to the maintenance
    function: its DB_SECRET_ID. Done on the function itself: LocalStack 2026.3.0 fails every
    update of these stacks (UpdateStack and an UPDATE change set both end in "maximum recursion
    depth exceeded")."""
    lam = client("lambda")
    name = stack["outputs"]["MaintenanceFunctionArn"]
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {**variables, "DB_SECRET_ID": secret}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    return f"DB_SECRET_ID -> {secret.rsplit(':', 1)[-1]}"


def custom_resource_request(stack, request_type, key):
    """CloudFormation's request for SchemaMigration, as AWS sends it, with a ResponseURL that
    LocalStack's S3 serves: a presigned PUT, as AWS's is. LocalStack's community edition has
    no custom resources (`No resource provider found for "Custom::LoginEtlSchema"`: it creates
    the resource as an empty stand-in and invokes nothing), so this sends CloudFormation's
    request itself, to the stack's maintenance function, and reads the answer from S3."""
    url = client("s3").generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=900)
    request = {
        "RequestType": request_type,
        "ServiceToken": stack["outputs"]["MaintenanceFunctionArn"],
        "ResponseURL": url,
        "StackId": next(iter(r["StackId"] for r in stack["resources"])),
        "RequestId": f"e2e-{request_type.lower()}-{RUN}",
        "LogicalResourceId": "SchemaMigration",
        "ResourceType": "Custom::LoginEtlSchema",
        "ResourceProperties": {"ServiceToken": stack["outputs"]["MaintenanceFunctionArn"]},
    }
    if request_type != "Create":
        request["PhysicalResourceId"] = "login-etl-schema"
    return request


def invoke_custom_resource(stack, request_type):
    """The answer the maintenance function PUT to the request's ResponseURL (None without one),
    and its invocation's error, if any."""
    key = f"cfn-responses/{RUN}-{request_type.lower()}-{time.monotonic_ns()}"
    request = custom_resource_request(stack, request_type, key)
    out = client("lambda").invoke(FunctionName=stack["outputs"]["MaintenanceFunctionArn"], Payload=json.dumps(request).encode())
    error = out.get("FunctionError")
    if error:
        error = f"{error}: {out['Payload'].read().decode()[:300]}"
    try:
        answer = json.loads(client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    except Exception as err:
        return None, error or f"no answer at the ResponseURL ({err})"
    for field in ("StackId", "RequestId", "LogicalResourceId"):
        if answer.get(field) != request[field]:
            return answer, f"the answer's {field} is {answer.get(field)!r}, the request's {request[field]!r}"
    return answer, error


def schema_migration(stack, parameters, code_uri, names, secrets):
    """The stack's maintenance function answers CloudFormation's requests: Create migrates the
    owner's database (A); pointed at B (as an update of MaintenanceDbSecretArn would), Update migrates B;
    pointed at C, which does not exist, Update answers FAILED with migrate's reason and no
    password; Delete answers SUCCESS and leaves B's schema. Returns the checks, (ok, what),
    for the main thread to print."""
    results = []
    started = time.monotonic()
    answer, error = invoke_custom_resource(stack, "Create")
    count, table = migrations_applied(names["A"])
    results.append((answer is not None and answer["Status"] == "SUCCESS" and not error and answer["PhysicalResourceId"] == "login-etl-schema" and count == MIGRATIONS and table,
                    f"schema: Create migrated {names['A']} ({count}/{MIGRATIONS} migrations, user_logins {'exists' if table else 'missing'}) and answered {answer and answer['Status']} ({answer and answer['Reason']!r}) with a PUT to LocalStack's presigned S3 URL" + (f"; {error}" if error else "")))
    status = point_at(stack, secrets["B"])
    answer, error = invoke_custom_resource(stack, "Update")
    count, table = migrations_applied(names["B"])
    results.append(( answer is not None and answer["Status"] == "SUCCESS" and not error and count == MIGRATIONS and table,
                    f"schema: pointed at {names['B']} ({status}), Update migrated it ({count}/{MIGRATIONS}) and answered {answer and answer['Status']}" + (f"; {error}" if error else "")))
    point_at(stack, secrets["C"])
    answer, error = invoke_custom_resource(stack, "Update")
    reason = (answer or {}).get("Reason", "")
    results.append((answer is not None and answer["Status"] == "FAILED" and "migrate failed" in reason and names["C"] in reason and OWNER_PASSWORD not in reason and not error,
                    f"schema: pointed at {names['C']}, which does not exist, Update answered {answer and answer['Status']}: {reason!r} (no password in it); the invocation itself succeeded" + (f"; {error}" if error else "")))
    missing = secrets["B"].rsplit(":", 1)[0] + ":e2e/login-etl/no-such-owner-secret-AbCdEf"
    point_at(stack, missing)
    answer, error = invoke_custom_resource(stack, "Update")
    reason = (answer or {}).get("Reason", "")
    results.append((answer is not None and answer["Status"] == "FAILED" and "no-such-owner-secret" in reason and not error,
                    f"schema: with an owner's secret it cannot read, the function still starts and answers {answer and answer['Status']}: {reason!r}" + (f"; {error}" if error else "")))
    point_at(stack, secrets["B"])
    before = psql(names["B"], "select count(*), max(installed_on) from _sqlx_migrations")
    answer, error = invoke_custom_resource(stack, "Delete")
    after = psql(names["B"], "select count(*), max(installed_on) from _sqlx_migrations")
    results.append((answer is not None and answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] == "login-etl-schema" and before == after and not error,
                    f"schema: Delete answered {answer and answer['Status']} ({answer and answer['Reason']!r}) and left {names['B']}'s schema as it was" + (f"; {error}" if error else "")))
    print(f"  (the five requests and their checks: {time.monotonic() - started:.0f} s, beside the run)")
    return results


# --- the run ------------------------------------------------------------------------------


def depth(url):
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return [int(attributes[name]) for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")]


def rows():
    url = urllib.parse.urlparse(os.environ["DATABASE_URL"])
    out = subprocess.run(
        ["psql", "-At", "-h", url.hostname, "-p", str(url.port or 5432), "-U", url.username or "postgres", url.path.lstrip("/"),
         "-c", "select count(*), count(distinct message_id) from user_logins"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    total, distinct = out.split("|")
    return int(total), int(distinct)


def emf_documents(function):
    """The function's EMF documents, from its log group in LocalStack's CloudWatch Logs."""
    logs = client("logs")
    group = f"/aws/lambda/{function}"
    documents, token = [], None
    while True:
        kwargs = {"logGroupName": group, "nextToken": token} if token else {"logGroupName": group}
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return []
        for event in page["events"]:
            try:
                document = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(document, dict) and "_aws" in document:
                documents.append(document)
        token = page.get("nextToken")
        if not token:
            return documents


def run(stack, cli):
    outputs = stack["outputs"]
    print(f"\n== Sending {COUNT} messages (about {BAD_RATIO * 100:g}% malformed) to the stack's queue with login-etl-cli send")
    sent = json.loads(subprocess.run(
        [cli, "send", "--json", "--queue-url", outputs["QueueUrl"], "--count", str(COUNT), "--bad-ratio", str(BAD_RATIO), "--seed", "22"],
        check=True, capture_output=True, text=True,
    ).stdout)
    malformed = sent["malformed"]
    valid = COUNT - malformed
    print(f"sent {COUNT} messages, {malformed} of them malformed")
    print(f"\n== LocalStack's event source mapping invokes the function (waiting up to {TIMEOUT:g} s)")
    started = time.monotonic()
    last = None
    while True:
        total, _ = rows()
        queue, dlq = depth(outputs["QueueUrl"]), depth(outputs["DeadLetterQueueUrl"])
        state = (total, sum(queue), sum(dlq))
        if state != last:
            print(f"  {time.monotonic() - started:5.1f} s  rows {total:4}  queue {sum(queue):4}  dlq {sum(dlq):3}")
            last = state
        if total >= valid and sum(queue) == 0 and sum(dlq) >= malformed:
            break
        if time.monotonic() - started > TIMEOUT:
            break
        time.sleep(1)
    seconds = time.monotonic() - started
    total, distinct = rows()
    dead = sum(depth(outputs["DeadLetterQueueUrl"]))
    # The last invocation's lines reach CloudWatch Logs a moment after its response.
    time.sleep(1)
    documents = emf_documents(outputs["FunctionArn"].rsplit(":", 1)[-1])
    reasons, received, inserted = {}, 0, 0
    for document in documents:
        if "Reason" in document:
            reasons[document["Reason"]] = reasons.get(document["Reason"], 0) + document["RecordsFailedByReason"]
        else:
            received += document.get("RecordsReceived", 0)
            inserted += document.get("RecordsInserted", 0)
    emitted = {m["Name"] for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}

    print("\n== This run (the function in LocalStack's containers, its EMF documents from CloudWatch Logs)")
    print(f"sent           {COUNT} messages ({malformed} malformed)")
    print(f"loaded         {total} rows ({distinct} distinct message ids); every message had its fate after {seconds:.1f} s")
    print(f"dead-lettered  {dead} messages")
    print(f"invocations    {len([d for d in documents if 'Reason' not in d])} batches, {received} records received, {inserted} inserted")
    print("failed deliveries by reason (a malformed message fails each of its MaxReceiveCount receives):")
    for reason, count in sorted(reasons.items()):
        print(f"  {reason:28} {count}")
    queue = depth(outputs["QueueUrl"])
    print(f"queue          {queue[0]} visible, {queue[1]} in flight, {queue[2]} delayed")
    print(f"dlq            {dead} visible ({outputs['DeadLetterQueueUrl']})")
    print("\n== The run, checked")
    check(total == valid and distinct == valid, f"every valid message is one row ({valid})")
    check(dead == malformed, f"every malformed message is in the stack's DLQ ({malformed})")
    check(sum(reasons.values()) == malformed * int(RUN_PARAMETERS["MaxReceiveCount"]), "each malformed message failed MaxReceiveCount times, with its reason")
    return emitted


SMOKE_TEST_WAIT = """
# The guide's `sleep 60` waits for the queue to drain: here it ends as soon as it has.
sleep() {
  local deadline=$((SECONDS + ${1%%[!0-9]*}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(login-etl-cli depth --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["visible"] + d["in_flight"] + d["delayed"])')" = 0 ] && return 0
    command sleep 1
  done
}
"""


def smoke_test(stack, cli):
    """docs/deploy.md's smoke test, its block as written, against `stack`: only its first line
    (`stack=login-etl`) names this stack instead. The pinned AWS CLI (.venv/localstack) with
    LocalStack's endpoint; login-etl-cli on PATH; DATABASE_URL the e2e database."""
    guide = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(r"<!-- deploy-rehearsal: smoke-test -->\s*```sh\n(.*?)```", guide, re.S)
    if not match:
        check(False, "docs/deploy.md has no block marked <!-- deploy-rehearsal: smoke-test -->")
        return
    block, named = re.subn(r"^stack=login-etl\b.*$", f"stack={stack['name']}", match.group(1), count=1, flags=re.M)
    check(named == 1, "the smoke test's first line sets stack=login-etl")
    aws = ROOT / ".venv" / "localstack" / "bin" / "aws"
    preamble = (
        "set -euo pipefail\n"
        f'aws() {{ "{aws}" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }}\n'
        + SMOKE_TEST_WAIT
    )
    before, _ = rows()
    env = {**os.environ, "PATH": f"{Path(cli).resolve().parent}:{os.environ['PATH']}", "AWS_PAGER": ""}
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", preamble + block], env=env, capture_output=True, text=True, timeout=180)
    after, _ = rows()
    out = done.stdout
    print(out.rstrip())
    print(f"  ({time.monotonic() - started:.1f} s)")
    check(done.returncode == 0, f"the smoke test ran to its end (exit {done.returncode}: {done.stderr.strip()[-300:]})")
    depths = re.findall(r"^\S+ visible=(\d+) in_flight=(\d+) delayed=(\d+)$", out, re.M)
    check(len(depths) == 2 and all(d == ("0", "0", "0") for d in depths), f"step 2 and 5: the queue and the DLQ empty ({depths})")
    check(after - before == 3, f"step 4: 3 more rows ({before} -> {after})")
    batches = out.count("batch processed")
    check(1 <= batches <= 3, f"step 3: the batches' log lines ({batches})")
    # LocalStack ignores describe-alarms' --state-value (it lists every alarm of the prefix),
    # so the alarms it printed are asked for their state.
    listed = json.loads(out[out.rindex("["):]) if "[" in out else None
    firing = [a["AlarmName"] for a in client("cloudwatch").describe_alarms(AlarmNames=listed or ["-"])["MetricAlarms"] if a["StateValue"] == "ALARM"]
    check(listed is not None and not firing, f"step 5: no alarm firing ({firing}; LocalStack listed {len(listed or [])} of any state)")


def main():
    bootstrap, cli = sys.argv[1], sys.argv[2]
    db_secret = os.environ["E2E_DB_SECRET_ARN"]
    started = time.monotonic()
    print(f"== Deploying template.yaml into LocalStack ({os.environ['AWS_ENDPOINT_URL']}): {len(MODES)} stacks through change sets")
    print("   (resolved first, as AWS's AWS::LanguageExtensions does: the Fn::Ifs the parameters decide;")
    print("   LocalStack's LanguageExtensions resolves only Fn::ForEach, Fn::Length and Fn::ToJsonString)")
    code_uri = upload_code(bootstrap)
    stacks = {}
    change_sets = {}
    team_queue_url = None
    for mode, extra in MODES.items():
        parameters = {**RUN_PARAMETERS, "DbSecretArn": db_secret, **extra}
        if mode == "retention":
            names, secrets = schema_databases()
            parameters["MaintenanceDbSecretArn"] = secrets["A"]
        if mode == "existing-queue":
            team_queue_url, parameters["ExistingQueueArn"], parameters["ExistingQueueKmsKeyArn"] = team_queue()
        try:
            change_sets[mode] = (parameters, create_change_set(f"{PREFIX}-{RUN}-{mode}", parameters, code_uri))
        except Exception as err:
            check(False, f"stack {PREFIX}-{RUN}-{mode}: {err}")
    with concurrent.futures.ThreadPoolExecutor(len(MODES)) as pool:
        futures = {
            mode: (parameters, pool.submit(execute, f"{PREFIX}-{RUN}-{mode}", seconds))
            for mode, (parameters, seconds) in change_sets.items()
        }
        for mode, (parameters, future) in futures.items():
            try:
                stacks[mode] = (parameters, future.result())
            except Exception as err:
                check(False, f"stack {PREFIX}-{RUN}-{mode}: {err}")
    for mode, (parameters, stack) in stacks.items():
        check(stack["status"] == "CREATE_COMPLETE" and not stack["failed"],
              f"stack {stack['name']} ({mode}): {stack['status']}, {len(stack['resources'])} resources in {stack['seconds']:.1f} s"
              + (f"; not created: {stack['failed']}" if stack["failed"] else ""))
        if stack["fallbacks"]:
            print(f"  note LocalStack does not emulate, and created as an empty stand-in: {', '.join(stack['fallbacks'])}")
    if "default" not in stacks:
        sys.exit(1)
    print(f"\n== The default stack's resources, as created")
    parameters, default = stacks["default"]
    function = check_default_stack(default, parameters)
    for mode in ("pollers", "retention"):
        if mode in stacks:
            print(f"\n== Stack {stacks[mode][1]['name']}, as created")
            check_mode(mode, stacks[mode][1], stacks[mode][0])
    schema = None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        if "retention" in stacks:
            # Beside the run: the retention stack's updates and delete (about a minute).
            schema = pool.submit(schema_migration, stacks["retention"][1], stacks["retention"][0], code_uri, names, secrets)
        emitted = run(default, cli)
        print("\n== The alarms, against the metrics the function emitted")
        check_alarms(default, function, emitted)
        if "pollers" in stacks:
            # A stack that has had no message yet, as after a first deploy.
            print(f"\n== docs/deploy.md's smoke test against {stacks['pollers'][1]['name']}")
            smoke_test(stacks["pollers"][1], cli)
        if schema is not None:
            print(f"\n== The stack's migrate (SchemaMigration's requests to the maintenance function) in {stacks['retention'][1]['name']}")
            try:
                for ok, what in schema.result():
                    check(ok, what)
            except Exception as err:
                check(False, f"schema: {err}")
    if "existing-queue" in stacks:
        # After the run and the smoke test, which count every row of the database.
        print(f"\n== Stack {stacks['existing-queue'][1]['name']}, reading a queue the team already has")
        check_existing_queue(stacks["existing-queue"][1], stacks["existing-queue"][0], team_queue_url, cli)
    if os.environ.get("E2E_KEEP_STACKS") != "1":
        cloudformation = client("cloudformation")
        for _, stack in stacks.values():
            cloudformation.delete_stack(StackName=stack["name"])
        if team_queue_url:
            client("sqs").delete_queue(QueueUrl=team_queue_url)
    print(f"\ne2e: {'FAILED: ' + '; '.join(failures) if failures else 'all checks passed'} ({time.monotonic() - started:.0f} s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
