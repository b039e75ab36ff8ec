#!/usr/bin/env python3
"""Run the function's bootstrap under AWS's own Runtime Interface Emulator (the
`aws-lambda-rie` that the pinned aws-sam-cli package ships and that `sam local invoke` runs in
its container), with exactly a given environment, and invoke it with event files in turn.

Usage: rie.py BOOTSTRAP ENV_JSON PORT EVENT_JSON [EVENT_JSON ...] [--host NAME=ADDRESS ...]

- The emulator listens on 127.0.0.1:PORT for invocations and serves the Runtime API to the
  bootstrap on 127.0.0.1:PORT+1. Both run with ENV_JSON's variables, what the provided.al2023
  image sets (PATH, LAMBDA_TASK_ROOT, ...), and nothing else from this shell.
- `--host NAME=ADDRESS` is what `sam local invoke --add-host` writes into the container's
  /etc/hosts; it is given to the emulator and the bootstrap alone through a private mount
  namespace (unshare; needs root), so the machine's /etc/hosts is untouched.
- After the last event the emulator gets SIGTERM, which it passes on to the bootstrap.

Prints one JSON object: {"invocations": [{"requestId", "status", "response", "lines"}],
"initLines", "shutdownLines", "exitCode"}: `lines` are what the bootstrap wrote between the
emulator's `START RequestId` and `END RequestId` markers, `initLines` what it wrote before the
first, `shutdownLines` what it wrote after the last.

What the emulator cannot do stays in scripts/runtime_api_harness.py: it sends no X-Ray trace
header (`Lambda-Runtime-Trace-Id`), so the trace-id check runs there.
"""
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from lambda_sandbox import container_env, shut_down, with_hosts

MARKER = re.compile(r"^(START|END|REPORT) RequestId: ([0-9a-f-]+)")


def emulator_binary():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".venv", "tools")
    found = glob.glob(os.path.join(root, "lib", "python3*", "site-packages", "samcli", "local",
                                   "rapid", "aws-lambda-rie-x86_64"))
    if not found:
        sys.exit("rie.py: aws-lambda-rie not found in .venv/tools (run scripts/tools.sh install)")
    return os.path.abspath(found[0])


def wait_for_port(port, child, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if child.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def invoke(port, event):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations",
        data=event, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def main():
    args, hosts = [], []
    argv = iter(sys.argv[1:])
    for arg in argv:
        if arg == "--host":
            hosts.append(next(argv))
        else:
            args.append(arg)
    if len(args) < 4:
        sys.exit(__doc__.split("\n\n")[1])
    bootstrap, env_path, port, events = args[0], args[1], int(args[2]), args[3:]
    env = json.load(open(env_path))
    task_root = tempfile.mkdtemp(prefix="rie-")
    stdout_path = os.path.join(task_root, "stdout.log")
    task_bootstrap = os.path.join(task_root, "bootstrap")
    shutil.copy(bootstrap, task_bootstrap)

    child_env = container_env(env, task_root)
    command = with_hosts([emulator_binary(), "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
                          "--runtime-api-address", f"127.0.0.1:{port + 1}", "--log-level", "error",
                          task_bootstrap], task_root, hosts)

    results = []
    with open(stdout_path, "wb") as stdout:
        child = subprocess.Popen(command, env=child_env, stdout=stdout, stderr=stdout, cwd=task_root)
        if not wait_for_port(port, child):
            child.kill()
            sys.exit(f"rie.py: the emulator did not listen on 127.0.0.1:{port}: "
                     + open(stdout_path, errors="replace").read())
        for path in events:
            status, body = invoke(port, open(path, "rb").read())
            try:
                response = json.loads(body or b"null")
            except ValueError:
                response = body.decode("utf-8", "replace")
            results.append({"event": path, "status": status, "response": response})
        # Give the last END/REPORT markers a moment to reach the file, then shut down.
        time.sleep(0.3)
        shut_down(child, 15)

    init_lines, shutdown_lines, current, invocations = [], [], None, []
    seen_any = False
    for line in open(stdout_path, encoding="utf-8", errors="replace").read().splitlines():
        marker = MARKER.match(line)
        if marker:
            kind, request_id = marker.groups()
            if kind == "START":
                current = {"requestId": request_id, "lines": []}
                invocations.append(current)
                seen_any = True
            elif kind == "END":
                current = None
            continue
        if "(rapid)" in line:  # the emulator's own log lines
            continue
        if current is not None:
            current["lines"].append(line)
        elif seen_any:
            shutdown_lines.append(line)
        else:
            init_lines.append(line)
    for result, seen in zip(results, invocations):
        result.update(seen)
    shutil.rmtree(task_root, ignore_errors=True)
    print(json.dumps({"invocations": results, "initLines": init_lines,
                      "shutdownLines": shutdown_lines, "exitCode": child.returncode}))


if __name__ == "__main__":
    main()
