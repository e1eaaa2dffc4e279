#!/usr/bin/env bash
# Builds the Docker image with podman and no registry, runs it, and checks it serves:
#   1. a local base image "like node:20-bookworm-slim": Debian bookworm (debootstrap --variant=minbase
#      from the Debian mirror apt already uses) + this machine's Node 20 binary and npm + a `node` user
#      (uid 1000, as in the official image), imported with `podman import` (built once, then reused);
#   2. `podman build --network host --build-arg NODE_IMAGE=<that base>` of the repository's Dockerfile;
#   3. `podman run`, wait for /v2/health/ready, classify one demo image, `podman stop` (SIGTERM) and
#      check the server exited 0 after a clean shutdown.
# Needs root and Debian's podman, buildah, debootstrap and runc (apt-get install podman buildah debootstrap runc).
# Prints image size and timings. Usage: scripts/docker-smoke.sh [--rebuild-base]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=localhost/sightline-base:bookworm-node20
IMAGE=localhost/sightline:smoke
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PORT=${SMOKE_PORT:-18080}
# Its own storage (overlay, native: vfs copies every layer whole and filled the disk at ~2 GB a step)
# and cgroupfs (no systemd). Where the machine mounts cgroups in hybrid mode (v1 controllers + an
# empty v2 tree, as the development VMs do), crun refuses to start a container ("cgroups in hybrid
# mode not supported") even with --cgroups=disabled: RUN steps use chroot isolation and the container
# runs under runc. Without CAP_SYS_RESOURCE (those VMs drop it) podman's default rlimits (nofile
# 1048576, nproc 4194304) cannot be set: the run asks for this shell's open-file limits and 4096
# processes instead.
STORE=${SMOKE_STORAGE:-/var/lib/containers/sightline-smoke}
PODMAN=(podman --root "$STORE" --runroot /run/containers/sightline-smoke --storage-driver overlay --cgroup-manager cgroupfs)
RUN_OPTS=(--runtime "$(command -v runc)" --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

for tool in podman debootstrap runc node; do
  command -v "$tool" >/dev/null || { echo "docker-smoke: $tool not found (apt-get install podman buildah debootstrap runc)" >&2; exit 2; }
done

if [ "${1:-}" = "--rebuild-base" ] || ! "${PODMAN[@]}" image exists "$BASE"; then
  t0=$(now)
  root=$(mktemp -d /tmp/sightline-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/tmp/sightline-debootstrap.log
  install -m 0755 "$(readlink -f "$(command -v node)")" "$root/usr/bin/node"
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  mkdir -p "$root/usr/lib/node_modules" && cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
  # Node's headers, so node-gyp (hnswlib-node, better-sqlite3) compiles without downloading them.
  mkdir -p "$root/usr/include" && cp -a /usr/include/node "$root/usr/include/node"
  # This machine's CA bundle: the npm registry may only be reachable through a TLS proxy whose CA the
  # host trusts (a stand-in base may carry the host's trust; the official image carries Debian's).
  mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  chroot "$root" /usr/sbin/groupadd --gid 1000 node
  chroot "$root" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | "${PODMAN[@]}" import --change 'CMD ["node"]' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' --change 'ENV npm_config_nodedir=/usr' - "$BASE" >/dev/null
  echo "base image $BASE built in $(secs "$t0" "$(now)") s"
fi

t0=$(now)
"${PODMAN[@]}" build --isolation chroot --network host --build-arg NODE_IMAGE="$BASE" -t "$IMAGE" . >/tmp/sightline-docker-build.log 2>&1 \
  || { tail -40 /tmp/sightline-docker-build.log; echo "docker-smoke: build failed (log: /tmp/sightline-docker-build.log)" >&2; exit 1; }
echo "image built in $(secs "$t0" "$(now)") s; size: $("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}' | awk '{ printf "%.0f MB", $1 / 1e6 }')"

name=sightline-smoke-$$
t0=$(now)
"${PODMAN[@]}" run -d "${RUN_OPTS[@]}" --name "$name" --network host -e SIGHTLINE_PORT="$PORT" -e SIGHTLINE_HOST=127.0.0.1 "$IMAGE" >/dev/null
cleanup() { "${PODMAN[@]}" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
for _ in $(seq 1 240); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/health/ready" || true)
  [ "$code" = 200 ] && break
  state=$("${PODMAN[@]}" inspect "$name" --format '{{.State.Status}}')
  [ "$state" = running ] || { "${PODMAN[@]}" logs "$name" | tail -20; echo "docker-smoke: container $state before ready" >&2; exit 1; }
  sleep 0.5
done
[ "$code" = 200 ] || { "${PODMAN[@]}" logs "$name" | tail -20; echo "docker-smoke: not ready after 120 s" >&2; exit 1; }
echo "ready in $(secs "$t0" "$(now)") s after podman run"
answer=$(curl -sf -F "image=@server/demo/trouser/00.png" "http://127.0.0.1:$PORT/v1/classify?topk=1")
echo "classify server/demo/trouser/00.png: $answer"
echo "$answer" | grep -q '"label":"Trouser"' || { echo "docker-smoke: expected Trouser" >&2; exit 1; }
t0=$(now)
"${PODMAN[@]}" stop --time 30 "$name" >/dev/null
exit_code=$("${PODMAN[@]}" inspect "$name" --format '{{.State.ExitCode}}')
echo "stopped with SIGTERM in $(secs "$t0" "$(now)") s, exit code $exit_code"
"${PODMAN[@]}" logs "$name" 2>&1 | tail -3
[ "$exit_code" = 0 ] || { echo "docker-smoke: the server did not exit cleanly" >&2; exit 1; }
echo "docker-smoke: ok"
