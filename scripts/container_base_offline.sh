#!/usr/bin/env bash
# Make the Containerfile's base image (debian:bookworm-slim) without a container registry: debootstrap a minimal
# Debian bookworm from the Debian mirror and import it into podman under the official name, so
# `podman build --pull=never -f Containerfile .` works on machines that reach Debian and PyPI but no registry.
# Needs root, debootstrap and podman (apt-get install -y debootstrap podman).
set -euo pipefail
IMAGE="${1:-docker.io/library/debian:bookworm-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if podman image exists "$IMAGE"; then
  echo "$IMAGE already present"; exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR"
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
tar -C "$work/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE"
echo "imported $IMAGE"
