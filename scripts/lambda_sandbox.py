"""What both local runners of the bootstrap (scripts/rie.py under AWS's emulator, and
scripts/runtime_api_harness.py) give it to look like SAM's provided.al2023 container: the
image's environment, and the container's /etc/hosts entries (`sam local invoke --add-host`)."""
import os
import signal
import subprocess

IMAGE_ENV = {
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}


def container_env(env, task_root, **extra):
    """The image's variables, then the function's (`env`), then the task root and handler."""
    child_env = dict(IMAGE_ENV)
    child_env.update(env)
    child_env.update({"LAMBDA_TASK_ROOT": task_root,
                      "_HANDLER": env.get("AWS_LAMBDA_FUNCTION_HANDLER", "bootstrap")})
    child_env.update(extra)
    return child_env


def with_hosts(command, task_root, hosts):
    """`command` run with extra /etc/hosts entries ("NAME=ADDRESS") in a private mount
    namespace (unshare; needs root), so the machine's /etc/hosts is untouched."""
    if not hosts:
        return command
    hosts_file = os.path.join(task_root, "hosts")
    with open(hosts_file, "w") as out:
        out.write(open("/etc/hosts").read())
        for entry in hosts:
            name, address = entry.split("=", 1)
            out.write(f"\n{address} {name}\n")
    return ["/usr/bin/unshare", "--mount", "/bin/sh", "-c",
            f'mount --bind "{hosts_file}" /etc/hosts && exec "$@"', "sh"] + command


def shut_down(child, grace_seconds):
    """SIGTERM, as Lambda sends at shutdown, then SIGKILL if the grace period runs out."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
