#!/usr/bin/env bash
# `make test`: configuration files checked offline with pinned tools (.venv/tools):
# docker-compose.yml against the Compose specification's JSON schema, the GitHub Actions
# workflows with actionlint and against SchemaStore's workflow schema (schemas vendored in
# tools/schemas/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh install
bin=$(scripts/tools.sh path)
"$bin/python" tools/python/check_schema.py tools/schemas/compose-spec.json docker-compose.yml
"$bin/python" tools/python/check_schema.py tools/schemas/github-workflows.json .github/workflows/*.yml
# -shellcheck= -pyflakes=: only actionlint's own checks, whatever else is on PATH.
"$bin/actionlint" -shellcheck= -pyflakes= .github/workflows/*.yml
# samconfig.toml cannot deploy a placeholder: every environment confirms its change set and
# sets no DbSecretArn (each deployer gives their own, or `sam deploy` stops and asks).
"$bin/python" - <<'PY'
import sys, tomllib
config = tomllib.load(open("samconfig.toml", "rb"))
problems = []
for env, commands in config.items():
    if not isinstance(commands, dict) or "deploy" not in commands:
        continue
    deploy = commands["deploy"].get("parameters", {})
    if deploy.get("confirm_changeset") is not True:
        problems.append(f"[{env}.deploy.parameters] confirm_changeset must be true")
    if "DbSecretArn" in str(deploy.get("parameter_overrides", "")):
        problems.append(f"[{env}.deploy.parameters] must not set DbSecretArn (a placeholder would deploy)")
if problems:
    sys.exit("samconfig.toml: " + "; ".join(problems))
PY
echo "lint-config: docker-compose.yml, .github/workflows and samconfig.toml are valid"
