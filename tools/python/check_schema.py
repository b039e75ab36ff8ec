#!/usr/bin/env python3
"""Validates YAML files against a JSON schema, offline (run with .venv/tools/bin/python, which
has jsonschema and PyYAML). The schemas are vendored in tools/schemas/ (from the pinned
check-jsonschema 0.39.0 wheel; licences beside them), so no network is needed.

Usage: check_schema.py SCHEMA.json FILE.yml [FILE.yml ...]
"""
import json
import sys

import jsonschema
import yaml


def main():
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    failed = False
    for path in sys.argv[2:]:
        document = yaml.safe_load(open(path))
        # YAML 1.1 reads a bare `on:` key (GitHub Actions' trigger) as the boolean true.
        if isinstance(document, dict) and True in document:
            document["on"] = document.pop(True)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        for error in errors:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            print(f"{path}: {where}: {error.message}", file=sys.stderr)
        failed |= bool(errors)
        if not errors:
            print(f"check_schema: {path} is valid against {sys.argv[1]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
