#!/usr/bin/env bash
# make e2e: the kind suite. Starts a container engine when none answers, builds (or loads
# from the cache) our image and the suite's helper images, creates a kind cluster from a
# node image built here (e2e/kind/cluster.sh), loads the images, deploys with `make deploy`,
# runs the tests under e2e/kind/ through kubectl, measures the footprint of what ships, and
# tears everything it made down again — also when a step fails.
#
# Environment: IMG (default kopia-operator:<package.json version>), KIND_CLUSTER,
# KIND_NODE_IMAGE=upstream (use the node image kind defaults to, where a registry is
# reachable), KEEP_CLUSTER=1 (leave the cluster up for a look; delete it with
# e2e/kind/cluster.sh down). Any failure exits non-zero; nothing here skips.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export KIND_CLUSTER="${KIND_CLUSTER:-kopia-e2e-kind}"
VERSION=$(node -p "require('./package.json').version")
IMG="${IMG:-kopia-operator:$VERSION}"
TOOLBOX=kopia-e2e/toolbox:bookworm
S3_IMAGE=kopia-e2e/gofakes3:v1.2.0

log() { printf '[e2e] %s\n' "$*" >&2; }
timed() {
  local label=$1 start=$SECONDS
  shift
  "$@"
  log "$label: $((SECONDS - start)) s"
}

cleanup() {
  local status=$?
  if [ -n "${KEEP_CLUSTER:-}" ]; then
    log "KEEP_CLUSTER is set: cluster $KIND_CLUSTER left up (KUBECONFIG=${KUBECONFIG:-}); e2e/kind/cluster.sh down deletes it"
  else
    e2e/kind/cluster.sh down || status=1
  fi
  scripts/container-engine.sh down || status=1
  log "finished in $((SECONDS - started)) s with status $status"
  exit "$status"
}
started=$SECONDS
trap cleanup EXIT
# A run stopped by a signal is a failed run, whatever the last command returned.
trap 'exit 130' INT
trap 'exit 143' TERM

timed "container engine" scripts/container-engine.sh up
timed "base images" scripts/base-images.sh
# The kind node's base (e2e/kind/cluster.sh) starts from the Debian base; on a machine that
# has none yet, the Dockerfile's Debian stand-in (or the real image) is that base.
docker image inspect kopia-e2e/debian-base:bookworm >/dev/null 2>&1 || docker tag debian:bookworm-slim kopia-e2e/debian-base:bookworm
BIN=$(scripts/build-test-binaries.sh kind s3 | tail -n 1)
export PATH="$BIN:$PATH"
timed "image $IMG" make --no-print-directory image IMG="$IMG"
timed "runtime check of $IMG" scripts/check-image.sh "$IMG"

# The suite's helper images: a context holding only what they copy.
context=$(mktemp -d)
cp "$BIN/gofakes3" "$context/"
timed "helper images" bash -c "docker build -q --target toolbox -t $TOOLBOX -f e2e/kind/images/Dockerfile $context >/dev/null &&
  docker build -q --target gofakes3 -t $S3_IMAGE -f e2e/kind/images/Dockerfile $context >/dev/null"
rm -rf "$context"

KUBECONFIG=$(e2e/kind/cluster.sh up | tail -n 1)
export KUBECONFIG
e2e/kind/cluster.sh load "$IMG" "$TOOLBOX" "$S3_IMAGE"

timed "S3 server" bash -c 'kubectl apply -f e2e/kind/manifests/s3.yaml >/dev/null &&
  kubectl -n kopia-e2e-storage rollout status deployment/s3 --timeout=180s >/dev/null'
timed "make deploy" make --no-print-directory deploy IMG="$IMG"
timed "rollout" kubectl -n kopia-system rollout status deployment/kopia-operator deployment/kopia-populator --timeout=300s

export E2E_STORAGE_CLASS="${E2E_STORAGE_CLASS:-standard}" E2E_COPY_METHODS="${E2E_COPY_METHODS:-Direct}"
timed "kind suite" node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js \
  e2e/kind --selectProjects kind --runInBand --testTimeout=1800000
timed "footprint" node --import tsx e2e/kind/footprint.ts
log "make e2e: passed"
