#!/usr/bin/env python3
"""Stand-in for Docker's bridge network and port publishing, for `sam local invoke` on an
engine that has no bridge network.

What it replaces: SAM CLI creates the function's container on the engine's default (bridge)
network, publishes the emulator's port 8080 on 127.0.0.1:PORT, and posts each invocation to
that port. This machine allows loopback traffic only, so its engine runs with
`--bridge=none` (scripts/docker-engine.sh) and a container on the default network is
unreachable.

When it is used: only when the engine has no network named `bridge` (scripts/sam.sh decides).
On a laptop whose engine has one, SAM talks to the engine directly and this file is not run.

What it does: it is a Docker API socket in front of the real one, passing every request
through unchanged except the creation of SAM's Lambda containers (label
`sam.cli.container.type=lambda`), which it moves into the host's network: NetworkMode host,
no published ports, and AWS's emulator (`/var/rapid/aws-lambda-rie`, SAM's entry point) told
to listen on 127.0.0.1:PORT itself and to serve the Runtime API on a free loopback port. Every
other part of SAM's container (image, mounts, environment, extra hosts) is SAM's own.

Usage: docker-host-network.py LISTEN_SOCKET [UPSTREAM_SOCKET]   (default /var/run/docker.sock)
Run it, then point SAM at it: DOCKER_HOST=unix://LISTEN_SOCKET.
"""
import json
import os
import re
import socket
import sys
import threading

CREATE = re.compile(rb"^POST (/v[0-9.]+)?/containers/create(\?\S*)? HTTP/1\.[01]$")
RIE = "/var/rapid/aws-lambda-rie"


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def host_network(spec):
    """SAM's container specification, moved into the host's network namespace."""
    if (spec.get("Labels") or {}).get("sam.cli.container.type") != "lambda":
        return spec
    host_config = spec.setdefault("HostConfig", {})
    bindings = host_config.pop("PortBindings", None) or {}
    spec.pop("ExposedPorts", None)
    host_config["NetworkMode"] = "host"
    published = bindings.get("8080/tcp") or bindings.get("8080")
    entry = spec.get("Entrypoint") or []
    if published and entry and entry[0] == RIE:
        port = published[0]["HostPort"]
        spec["Entrypoint"] = entry + [
            "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
            "--runtime-api-address", f"127.0.0.1:{free_loopback_port()}",
        ]
    return spec


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.split(b"\r\n"), rest


def pipe(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client, upstream_path):
    with client:
        lines, rest = read_head(client)
        if lines is None:
            return
        request, headers = lines[0], lines[1:]
        upgrade = any(h.lower().startswith(b"upgrade:") for h in headers)
        # One request per connection: the daemon closes it after answering, so the next
        # request comes on a new connection and is inspected too.
        headers = [h for h in headers if upgrade or not h.lower().startswith(b"connection:")]
        if not upgrade:
            headers.append(b"Connection: close")
        if CREATE.match(request):
            length = next(int(h.split(b":", 1)[1]) for h in headers if h.lower().startswith(b"content-length:"))
            while len(rest) < length:
                chunk = client.recv(65536)
                if not chunk:
                    return
                rest += chunk
            body = json.dumps(host_network(json.loads(rest[:length]))).encode()
            headers = [h for h in headers if not h.lower().startswith(b"content-length:")]
            headers.append(b"Content-Length: " + str(len(body)).encode())
            rest = body
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(upstream_path)
        with upstream:
            upstream.sendall(b"\r\n".join([request, *headers]) + b"\r\n\r\n" + rest)
            # The exchange is over when the daemon closes its side (after its answer, or
            # when a hijacked stream such as an attach ends).
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            pipe(upstream, client)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    listen, upstream = sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "/var/run/docker.sock"
    if os.path.exists(listen):
        os.unlink(listen)
    server = socket.socket(socket.AF_UNIX)
    server.bind(listen)
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, upstream), daemon=True).start()


if __name__ == "__main__":
    main()
