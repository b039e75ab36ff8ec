#!/usr/bin/env bash
# Stand-in for AWS's Lambda base image public.ecr.aws/lambda/provided:al2023-x86_64, built
# offline, for `sam local invoke` on a machine that cannot pull the real one.
#
# What it replaces: the image SAM CLI puts its emulator (aws-lambda-rie, from the SAM package)
# on before it runs the function. When it is used: only after `docker pull` of the real image
# has failed (scripts/sam.sh tries the pull first and says in one line which it uses); on a
# machine that can pull, the real image is used and this file is not run.
#
# What it holds: what a provided.al2023 function and SAM's image build use of the real image,
# and nothing else: the bootstrap's shared libraries (this host's, found with ldd, so it runs
# a bootstrap built on this host), /bin/sh, mv, chmod, cp and rm (SAM's Dockerfile runs them),
# the CA bundle at Amazon Linux's path, /var/task, /var/runtime, /opt and /tmp, and the real
# image's environment (LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR, PATH, LD_LIBRARY_PATH, ...).
# It is labelled org.login-etl.stand-in, so it is never mistaken for the real image.
#
# Usage: tools/stand-ins/lambda-base-image.sh IMAGE BOOTSTRAP
set -euo pipefail
image=$1 bootstrap=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

libraries() { ldd "$1" | grep -o '/[^ ]*' || true; }

# The programs, and the libraries they and the bootstrap load (the bootstrap itself comes from
# SAM's mount at /var/task).
for file in $( (printf '%s\n' /bin/sh /bin/mv /bin/chmod /bin/cp /bin/rm
  for program in "$bootstrap" /bin/sh /bin/mv /bin/chmod /bin/cp /bin/rm; do libraries "$program"; done) | sort -u); do
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
done
mkdir -p "$root"/{var/task,var/runtime,opt,etc/pki/tls/certs,etc/ssl/certs,usr/bin,bin}
chmod 1777 "$root/tmp" 2>/dev/null || install -d -m 1777 "$root/tmp"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/pki/tls/certs/ca-bundle.crt"
ln -s /etc/pki/tls/certs/ca-bundle.crt "$root/etc/ssl/certs/ca-certificates.crt"

tar -C "$root" -c . | docker import \
  --change 'ENV LANG=en_US.UTF-8' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin' \
  --change 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'WORKDIR /var/task' \
  --change 'LABEL org.login-etl.stand-in="provided:al2023 built offline by tools/stand-ins/lambda-base-image.sh"' \
  - "$image" >/dev/null
echo "lambda-base-image.sh: built $image offline ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
