"""Count each workspace crate's public items: what a user of the crate can name.

Usage (from the root; rustdoc's JSON output is unstable, so RUSTC_BOOTSTRAP lets the stable
toolchain write it, for this count only):

    RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" \
      cargo doc --workspace --no-deps --all-features
    python3 tools/python/public_items.py target/doc

Reads each crate's target/doc/CRATE.json and prints, per crate, the items reachable from its
root under a public path (modules, types, traits, functions, constants, macros; enum variants
apart), the names its root module holds, and the public methods and associated items of its
own types (inherent impls only: trait impls add no name a user has to learn).
"""

import collections
import json
import pathlib
import sys

# Kinds that are an enum's parts rather than names of their own.
PARTS = {"variant", "struct_field"}


def count(path: pathlib.Path) -> dict:
    doc = json.loads(path.read_text())
    index = doc["index"]
    named = collections.Counter(
        item["kind"] for item in doc["paths"].values() if item["crate_id"] == 0 and item["kind"] not in PARTS
    )
    root = index[str(doc["root"])]
    methods = 0
    for item in index.values():
        impl = item.get("inner", {}).get("impl")
        if item.get("crate_id") != 0 or impl is None or impl.get("trait") is not None:
            continue
        methods += sum(1 for child in impl["items"] if index.get(str(child), {}).get("visibility") == "public")
    return {
        "named": sum(named.values()),
        "by kind": dict(sorted(named.items())),
        "root names": len(root["inner"]["module"]["items"]),
        "methods": methods,
    }


def main() -> int:
    doc_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/doc")
    files = sorted(doc_dir.glob("*.json"))
    if not files:
        print(f"public_items: no rustdoc JSON in {doc_dir} (see this file's usage)", file=sys.stderr)
        return 2
    for path in files:
        counts = count(path)
        kinds = ", ".join(f"{kind} {n}" for kind, n in counts["by kind"].items())
        print(
            f"{path.stem}: {counts['named']} public items ({kinds}); "
            f"{counts['root names']} names at the root; {counts['methods']} public methods and associated items"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
