#!/usr/bin/env python3
"""Translates template.yaml with the pinned SAM translator once per scaling mode, offline, the
way CloudFormation does at deploy: AWS::LanguageExtensions first resolves each `Fn::If` whose
condition the parameters decide, then SAM runs. `sam validate` translates the template with
its conditions unresolved, so it cannot see a combination that SAM refuses only once they are
resolved (a function with both VpcConfig and CapacityProviderConfig, say).

Checks, per mode: SAM accepts the template; on Managed Instances the function has a
CapacityProviderConfig and no VpcConfig, at least 2048 MB and no reserved concurrency; on
classic Lambda the reverse (reserved concurrency only with ReserveConcurrency=true); with provisioned pollers the SQS mapping has a
ProvisionedPollerConfig and no ScalingConfig, otherwise the reverse; with ExistingQueueArn the
mapping reads that queue, the stack creates no LoginQueue and no queue policy (which would
replace the team's), and still its dead-letter queue.

Usage: .venv/tools/bin/python tools/python/check_template_modes.py [template.yaml]
"""
import copy
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

# The conditions these modes decide, from the parameters (as template.yaml defines them).
CONDITIONS = {
    "OnManagedInstances": lambda p: p["ComputeMode"] == "ManagedInstances",
    "ProvisionedPollers": lambda p: p["SqsPollerMode"] == "Provisioned",
    "HasVpc": lambda p: "".join(p["SubnetIds"]) != "",
    "ReservesConcurrency": lambda p: p["ReserveConcurrency"] == "true",
    "UsesExistingQueue": lambda p: p["ExistingQueueArn"] != "",
    "CreatesQueue": lambda p: p["ExistingQueueArn"] == "",
    "HasExistingQueueKey": lambda p: p["ExistingQueueKmsKeyArn"] != "",
}

EXISTING_QUEUE = {
    "ExistingQueueArn": "arn:aws:sqs:us-east-1:111122223333:checkout-logins",
    "ExistingQueueKmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/0b0c0d0e-1111-2222-3333-444455556666",
}

MODES = [
    {"ComputeMode": "Lambda", "SqsPollerMode": "OnDemand", "SubnetIds": []},
    {"ComputeMode": "Lambda", "SqsPollerMode": "OnDemand", "SubnetIds": ["subnet-1"]},
    {"ComputeMode": "Lambda", "SqsPollerMode": "Provisioned", "SubnetIds": ["subnet-1"]},
    {"ComputeMode": "Lambda", "SqsPollerMode": "Provisioned", "SubnetIds": ["subnet-1"], "ReserveConcurrency": "true"},
    {"ComputeMode": "ManagedInstances", "SqsPollerMode": "OnDemand", "SubnetIds": ["subnet-1"]},
    {"ComputeMode": "ManagedInstances", "SqsPollerMode": "Provisioned", "SubnetIds": ["subnet-1"]},
    {"ComputeMode": "Lambda", "SqsPollerMode": "OnDemand", "SubnetIds": ["subnet-1"], **EXISTING_QUEUE},
]

NO_VALUE = object()


def resolve(node, conditions):
    """Resolves `Fn::If` on the decided conditions and drops `AWS::NoValue`, as
    AWS::LanguageExtensions does; everything else stays for SAM and CloudFormation."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"] and node["Fn::If"][0] in conditions:
            name, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        resolved = {key: resolve(value, conditions) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve(item, conditions) for item in node) if item is not NO_VALUE]
    return node


class NoManagedPolicies:
    def load(self):
        return {}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template = yaml_parse(open(path).read())
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    failures = []
    for mode in MODES:
        parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
        parameters.update(mode)
        conditions = {name: decide(parameters) for name, decide in CONDITIONS.items()}
        document = resolve(copy.deepcopy(template), conditions)
        document["Transform"] = "AWS::Serverless-2016-10-31"
        for resource in document["Resources"].values():
            # `sam build` fills CodeUri with the built artifact; SAM wants an S3 URI here.
            if resource["Type"] == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = "s3://bucket/bootstrap.zip"
        label = f"{mode['ComputeMode']}/{mode['SqsPollerMode']}/{'vpc' if mode['SubnetIds'] else 'no-vpc'}"
        label += "/reserved" if conditions["ReservesConcurrency"] else ""
        label += "/existing-queue" if conditions["UsesExistingQueue"] else ""
        try:
            output = transform(document, {k: v for k, v in parameters.items() if v is not None}, NoManagedPolicies())
        except Exception as err:  # the translator's own report of what it refused
            failures.append(f"{label}: SAM refused the template: {err}")
            continue
        resources = output["Resources"]
        function = resources["LoginEtlFunction"]["Properties"]
        # SAM names the mapping after the function and its event (Events: LoginQueue).
        mapping = resources["LoginEtlFunctionLoginQueue"]["Properties"]
        existing = conditions["UsesExistingQueue"]
        queue_policies = [r for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"]

        def created(resource):
            spec = resources.get(resource) if isinstance(resource, str) else resource
            return spec is not None and (spec.get("Condition") is None or conditions.get(spec["Condition"], True))
        managed = conditions["OnManagedInstances"]
        checks = [
            ("CapacityProviderConfig" in function) == managed,
            ("VpcConfig" in function) == (not managed and conditions["HasVpc"]),
            ("ReservedConcurrentExecutions" in function) == (not managed and conditions["ReservesConcurrency"]),
            not managed or function["MemorySize"] == {"Ref": "ManagedInstancesMemorySize"},
            not managed or any(r["Type"] == "AWS::Lambda::CapacityProvider" for r in resources.values()),
            ("ProvisionedPollerConfig" in mapping) == conditions["ProvisionedPollers"],
            ("ScalingConfig" in mapping) == (not conditions["ProvisionedPollers"]),
            mapping["EventSourceArn"] == ({"Ref": "ExistingQueueArn"} if existing else {"Fn::GetAtt": ["LoginQueue", "Arn"]}),
            # CloudFormation, not SAM, drops a resource whose condition is false.
            created("LoginQueue") != existing,
            created("LoginDeadLetterQueue"),
            not existing or not any("LoginQueue" in str(p["Properties"]["Queues"]) for p in queue_policies if created(p)),
        ]
        if not all(checks):
            failures.append(f"{label}: unexpected function or mapping properties: {checks}; mapping reads {mapping['EventSourceArn']}")
        else:
            print(f"check_template_modes: {label}: SAM accepts it; scaling controls and queue as expected")
            if existing:
                print(f"  mapping {mapping['EventSourceArn']}")
    for failure in failures:
        print(f"check_template_modes: {failure}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
