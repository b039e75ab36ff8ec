#!/usr/bin/env python3
"""Starts LocalStack in host mode (`python -m localstack.runtime.main`), with three stand-ins
for what its Lambda service downloads or assumes, each used only when the real one fails.

What they replace, and when each is used:

- **The runtime init** (LocalStack's Lambda Runtime Interface Emulator, downloaded from GitHub
  when the first function is created): when that download fails (offline, as on the project's
  CI machine), the stand-in `tools/stand-ins/lambda-init` built by `scripts/e2e.sh` at
  `LOGIN_ETL_LAMBDA_INIT` is used instead, and one line in LocalStack's log says so. With
  network access the download succeeds and LocalStack's own init runs.
- **The runtime image pull** (LocalStack pulls `LAMBDA_RUNTIME_IMAGE_MAPPING`'s image at every
  CreateFunction, and refuses the function when the pull fails, even if the image is present):
  when the pull fails and the image is present (the stand-in `tools/stand-ins/lambda-base-image.sh`
  built offline, or an image pulled earlier), the present one is used, said in one line. With
  network access the pull succeeds.
- **The container's address in the host's network** (`LAMBDA_DOCKER_NETWORK=host`, the only
  network a loopback-only machine has): LocalStack asks Docker for the container's address on
  its network, and the network `host` has none, so it fails ("Container ... is not connected
  to target network host"). In the host's network the address is 127.0.0.1, and as every
  container shares it, each stand-in init listens on a port of its own (`LOGIN_ETL_INIT_PORT`,
  which LocalStack's own init does not read: with it, LocalStack's port 9563 is kept, and only
  one environment at a time can start). On any other network nothing is changed.

These patch LocalStack's private code (`localstack.services.lambda_.invocation`), written
against `localstack-core` 2026.3.0: the version pinned in `tools/python/pyproject.toml` (its `localstack` group).
Another version is refused at start (`PINNED` below; `scripts/e2e.sh --check-pin` tests that the
pin and this file agree).

Usage: python tools/stand-ins/localstack-lambda-docker.py   (LocalStack's own environment variables)
"""
import logging
import os
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

PINNED = "2026.3.0"
LOG = logging.getLogger("login-etl.stand-ins")


def patch():
    from localstack import config
    from localstack.services.lambda_.invocation import docker_runtime_executor as executor

    real_client_path = executor.get_runtime_client_path
    stand_in_used = []

    def runtime_client_path():
        try:
            return real_client_path()
        except Exception as err:  # LocalStack's PackageException: the download failed
            init = os.environ.get("LOGIN_ETL_LAMBDA_INIT", "")
            if not init or not Path(init).is_file():
                raise
            folder = Path(tempfile.gettempdir()) / "login-etl-lambda-init"
            (folder / "var/rapid").mkdir(parents=True, exist_ok=True)
            shutil.copy(init, folder / "var/rapid/init")
            (folder / "var/rapid/init").chmod(0o755)
            if not stand_in_used:
                LOG.warning("LocalStack's Lambda runtime init cannot be downloaded (%s); using the stand-in %s", err, init)
                stand_in_used.append(True)
            return folder

    executor.get_runtime_client_path = runtime_client_path

    real_ensure_image = executor._ensure_runtime_image_present

    def ensure_runtime_image_present(image, platform):
        try:
            real_ensure_image(image, platform)
        except Exception as err:
            try:
                executor.CONTAINER_CLIENT.inspect_image(image, pull=False)
            except Exception:
                raise err from None
            LOG.warning("%s cannot be pulled (%s); using the image present", image, err or type(err).__name__)
            executor.PULLED_IMAGES.add((image, platform))

    executor._ensure_runtime_image_present = ensure_runtime_image_present

    real_start = executor.DockerRuntimeExecutor.start

    def start(self, env_vars):
        if config.LAMBDA_DOCKER_NETWORK == "host" and stand_in_used:
            port = executor.get_free_tcp_port()
            env_vars = {**env_vars, "LOGIN_ETL_INIT_PORT": str(port)}
            self.executor_endpoint.container_port = port
        return real_start(self, env_vars)

    executor.DockerRuntimeExecutor.start = start

    client_class = type(executor.CONTAINER_CLIENT)
    real_ipv4 = client_class.get_container_ipv4_for_network

    def container_ipv4(self, container_name_or_id, container_network):
        if container_network == "host":
            return "127.0.0.1"
        return real_ipv4(self, container_name_or_id, container_network)

    client_class.get_container_ipv4_for_network = container_ipv4


def main():
    installed = version("localstack-core")
    if installed != PINNED:
        sys.exit(
            f"localstack-lambda-docker.py: written against localstack-core {PINNED}, found {installed}; "
            "check its patches against the new version's docker_runtime_executor.py and "
            "executor_endpoint.py, then update PINNED and tools/python/pyproject.toml (with uv lock) together"
        )
    patch()
    from localstack.runtime.main import main as localstack_main

    localstack_main()


if __name__ == "__main__":
    main()
