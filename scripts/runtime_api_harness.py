#!/usr/bin/env python3
"""A minimal Lambda Runtime API (the part a custom runtime talks to), to run the function's
bootstrap on one event with exactly a given environment, without Docker.

Kept only for what AWS's own emulator cannot do: `make test-sam-local` runs the bootstrap
under aws-lambda-rie (scripts/rie.py) for everything else, but the emulator sends no X-Ray
trace header, so this harness serves the invocation whose log lines must carry
`xrayTraceId` (Lambda sends `Lambda-Runtime-Trace-Id` with every event when tracing is on).

Usage: runtime_api_harness.py BOOTSTRAP ENV_JSON EVENT_JSON PORT [HOSTS_ENTRY ...]

- The bootstrap gets ENV_JSON's variables and nothing else from this shell, plus what the
  provided.al2023 image itself sets (PATH, LAMBDA_TASK_ROOT, ...) and AWS_LAMBDA_RUNTIME_API.
- HOSTS_ENTRY ("host.docker.internal=127.0.0.1") is what `sam local invoke --add-host` writes
  into the container's /etc/hosts. It is given to the bootstrap alone, through a private
  mount namespace (unshare; needs root), so the machine's /etc/hosts is untouched.
- Serves one invocation (request id, deadline, function ARN and an X-Ray trace header, as
  Lambda sends them), then stops the bootstrap with SIGTERM.

Prints one JSON object: {"requestId", "traceId", "response" | "invocationError" | "initError",
"initLines", "invocationLines"}: the bootstrap's stdout lines before it asked for the event
and while it handled it.
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from lambda_sandbox import container_env, shut_down, with_hosts



def main():
    bootstrap, env_path, event_path, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    hosts = sys.argv[5:]
    env = json.load(open(env_path))
    event = open(event_path, "rb").read()
    request_id = str(uuid.uuid4())
    trace_id = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1"
    state = {"handed_out": False, "done": threading.Event(), "stdout_mark": None}
    task_root = tempfile.mkdtemp(prefix="runtime-api-harness-")
    stdout_path = os.path.join(task_root, "stdout.log")

    class Api(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_GET(self):
            if self.path != "/2018-06-01/runtime/invocation/next":
                return self.reply(404)
            if state["handed_out"]:
                # Lambda freezes the instance here; we stop it once the response is in.
                state["done"].wait(60)
                time.sleep(5)
                return self.reply(500)
            state["handed_out"] = True
            # Everything the bootstrap wrote before asking for an event is init output.
            state["stdout_mark"] = os.path.getsize(stdout_path)
            deadline = int((time.time() + float(env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))) * 1000)
            self.reply(200, event, [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn",
                 f"arn:aws:lambda:us-east-1:123456789012:function:{env.get('AWS_LAMBDA_FUNCTION_NAME', 'f')}"),
                ("Lambda-Runtime-Trace-Id", trace_id),
            ])

        def do_POST(self):
            body = self.body()
            if self.path == "/2018-06-01/runtime/init/error":
                state["initError"] = json.loads(body or b"{}")
                state["initErrorType"] = self.headers.get("Lambda-Runtime-Function-Error-Type")
            elif self.path == f"/2018-06-01/runtime/invocation/{request_id}/response":
                state["response"] = json.loads(body or b"null")
            elif self.path == f"/2018-06-01/runtime/invocation/{request_id}/error":
                state["invocationError"] = json.loads(body or b"{}")
            else:
                return self.reply(404)
            state["stdout_end"] = os.path.getsize(stdout_path)
            self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
            state["done"].set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    shutil.copy(bootstrap, os.path.join(task_root, "bootstrap"))
    child_env = container_env(env, task_root, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
    # The image's PATH does not exist here; the bootstrap needs none of it.
    command = with_hosts([os.path.join(task_root, "bootstrap")], task_root, hosts)
    with open(stdout_path, "wb") as stdout:
        child = subprocess.Popen(command, env=child_env, stdout=stdout, stderr=stdout, cwd=task_root)
        finished = state["done"].wait(60)
        shut_down(child, 10)
    server.shutdown()

    output = open(stdout_path, "rb").read()
    mark = state["stdout_mark"] if state["stdout_mark"] is not None else len(output)
    end = state.get("stdout_end", len(output))
    lines = lambda data: data.decode("utf-8", "replace").splitlines()
    result = {
        "requestId": request_id,
        "traceId": trace_id,
        "finished": finished,
        "exitCode": child.returncode,
        "initLines": lines(output[:mark]),
        "invocationLines": lines(output[mark:end]),
    }
    for key in ("response", "invocationError", "initError", "initErrorType"):
        if key in state:
            result[key] = state[key]
    shutil.rmtree(task_root, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
