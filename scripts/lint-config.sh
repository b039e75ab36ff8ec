#!/usr/bin/env bash
# `make test`: configuration files checked offline with pinned tools (.venv/tools):
# docker-compose.yml against the Compose specification's JSON schema, the GitHub Actions
# workflows with actionlint and against SchemaStore's workflow schema (schemas vendored in
# tools/schemas/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh install
bin=$(scripts/tools.sh path)
"$bin/python" scripts/check_schema.py tools/schemas/compose-spec.json docker-compose.yml
"$bin/python" scripts/check_schema.py tools/schemas/github-workflows.json .github/workflows/*.yml
# -shellcheck= -pyflakes=: only actionlint's own checks, whatever else is on PATH.
"$bin/actionlint" -shellcheck= -pyflakes= .github/workflows/*.yml
echo "lint-config: docker-compose.yml and .github/workflows are valid"
