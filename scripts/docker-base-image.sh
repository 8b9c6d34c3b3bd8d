#!/usr/bin/env bash
# Builds the local base image `nodebase:local` from this host's own node binary and the shared
# libraries `ldd` lists for it. No registry is involved: the rootfs is assembled here and
# `docker import`ed. The image has no shell, so Dockerfiles built on it use COPY, never RUN.
#
#   scripts/docker-base-image.sh [--force]     (--force rebuilds an existing image)
set -euo pipefail

IMAGE=${RATATOSKR_BASE_IMAGE:-nodebase:local}
force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE exists (use --force to rebuild)"
  exit 0
fi

node_bin=$(readlink -f "$(command -v node)")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/x86_64-linux-gnu" "$root/lib64" "$root/tmp" "$root/etc" "$root/data"
cp "$node_bin" "$root/usr/bin/node"
# Every library node links against; native addons in the broker's dependencies (lmdb,
# msgpackr-extract) need a subset of the same (libstdc++, libm, libgcc_s, libc).
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
  cp -L "$lib" "$root/usr/lib/x86_64-linux-gnu/"
done
mv "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$root/lib64/"
ln -s usr/lib "$root/lib"
ln -s usr/bin "$root/bin"
chmod 1777 "$root/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" -c . | docker import --change 'ENV PATH=/usr/bin' - "$IMAGE" >/dev/null
echo "base image $IMAGE built from $node_bin ($("$node_bin" --version))"
