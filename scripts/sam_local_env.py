#!/usr/bin/env python3
"""The environment `sam local invoke --env-vars ENV_JSON` gives the function, computed by the
pinned SAM CLI's own code (run with .venv/tools/bin/python), and a check that env.json only
names variables the template declares on the function: SAM silently drops any other key.

Usage: sam_local_env.py check ENV_JSON [FUNCTION]
       sam_local_env.py resolve ENV_JSON OUT_JSON [FUNCTION] [Name=Value ...]   (parameter overrides)
"""
import json
import sys

from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

TEMPLATE = "template.yaml"


def function(name, parameter_overrides):
    stacks, _ = SamLocalStackProvider.get_stacks(TEMPLATE, parameter_overrides=parameter_overrides)
    found = SamFunctionProvider(stacks).get(name)
    if found is None:
        sys.exit(f"sam_local_env: no function {name} in {TEMPLATE}")
    return found


def overrides_for(env_json, fn):
    """The keys SAM would apply to this function, as in LocalLambdaRunner._make_env_vars."""
    overrides = dict(env_json.get("Parameters", {}))
    specific = env_json.get(fn.name) or env_json.get(fn.function_id) or env_json.get(fn.functionname)
    overrides.update(specific or {})
    return overrides


def main():
    mode, env_path = sys.argv[1], sys.argv[2]
    env_json = json.load(open(env_path))
    if mode == "check":
        name = sys.argv[3] if len(sys.argv) > 3 else "LoginEtlFunction"
        fn = function(name, {})
        declared = set((fn.environment or {}).get("Variables", {}))
        undeclared = sorted(set(overrides_for(env_json, fn)) - declared)
        if undeclared:
            sys.exit(
                f"sam_local_env: {env_path} sets {', '.join(undeclared)}, not declared on {name} in "
                f"{TEMPLATE}; sam local invoke would silently ignore them. Declare them (empty value = unset)."
            )
        print(f"sam_local_env: every key of {env_path} is declared on {name}")
        return
    out_path = sys.argv[3]
    name = sys.argv[4] if len(sys.argv) > 4 else "LoginEtlFunction"
    parameters = dict(arg.split("=", 1) for arg in sys.argv[5:])
    fn = function(name, parameters)
    # SAM's own resolution: template values < shell environment < env.json, plus the AWS_*
    # variables it always sets. get_aws_creds reads the credentials chain, like `sam local`.
    runner = LocalLambdaRunner(None, None, ".", ".", env_vars_values=env_json)
    env = runner._make_env_vars(fn).resolve()  # pylint: disable=protected-access
    # SAM CLI 1.170 does not resolve the `!If [OnManagedInstances, …]` around the function's
    # CapacityProviderConfig (the stack's AWS::LanguageExtensions does, in the cloud): it sees a
    # capacity provider in every mode and sets AWS_LAMBDA_MAX_CONCURRENCY to its default, 4.
    # In the default ComputeMode (Lambda) the deployed function has no capacity provider and
    # Lambda sets no such variable, so neither does this environment.
    if parameters.get("ComputeMode", "Lambda") != "ManagedInstances":
        env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
    json.dump(env, open(out_path, "w"), indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
