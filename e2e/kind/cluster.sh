#!/usr/bin/env bash
# A kind cluster from parts built on this machine, for the kind e2e tier.
#
#   e2e/kind/cluster.sh up      build or load the node image, create the cluster, wait for
#                               the node to be Ready; prints the kubeconfig path last
#   e2e/kind/cluster.sh down    delete the cluster
#   e2e/kind/cluster.sh check   a pod from a locally loaded image runs with a bound claim
#   e2e/kind/cluster.sh load IMAGE...  load images from this Docker engine into the node
#   e2e/kind/cluster.sh image   only build or load the node image; prints its tag last
#
# No image registry is reachable from the machines this runs on, so nothing is pulled:
# kind, Kubernetes, containerd, crictl, etcd and coredns are built from their Go modules
# (scripts/build-test-binaries.sh), pause from the Kubernetes module's C source, and the
# base image from Debian packages. Every image is kept as a `docker save` archive under
# $CACHE/kind, keyed by the versions and recipe files it was made from, so a warm run
# loads archives instead of building. The node image carries the component images kubeadm
# and containerd ask for, under the names they ask for (read from kubeadm and from kind's
# containerd configuration at build time, not written here).
#
# It also installs the VolumeSnapshot CRDs and snapshot-controller (external-snapshotter).
#
# Environment: KIND_CLUSTER (default kopia-e2e-kind), KOPIA_OPERATOR_CACHE, KIND_RETAIN=1
# (keep a node that failed to come up, to read its logs).
# Any failure exits non-zero with one line on stderr naming the cause.
set -Eeuo pipefail
# Anything that fails without its own message still ends in one line naming it.
trap 'fail "unexpected failure (line $LINENO): $BASH_COMMAND"' ERR

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/e2e/kind"
CACHE="${KOPIA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kopia-operator}"
KIND_CACHE="$CACHE/kind"
CLUSTER="${KIND_CLUSTER:-kopia-e2e-kind}"
PREFIX=kopia-e2e
DEBIAN_IMAGE="$PREFIX/debian-base:bookworm"

log() { printf '[kind-cluster] %s\n' "$*" >&2; }
fail() { printf 'kind-cluster: %s\n' "$*" >&2; exit 1; }
# timed <label> <command...>: runs the command and logs how long it took.
timed() {
  local label=$1 start=$SECONDS rc=0; shift
  "$@" || rc=$?
  log "$label: $((SECONDS - start))s$([ $rc -eq 0 ] || echo " (failed: exit $rc)")"
  return $rc
}

# The versions are the build script's pins, read rather than repeated.
pin() { sed -n "s/^$1=//p" "$ROOT/scripts/build-test-binaries.sh"; }
KUBE_VERSION=$(pin KUBE_VERSION)
ETCD_VERSION=$(pin ETCD_VERSION)
KIND_VERSION=$(pin KIND_VERSION)
CONTAINERD_VERSION=$(pin CONTAINERD_VERSION)
CRICTL_VERSION=$(pin CRICTL_VERSION)
COREDNS_VERSION=$(pin COREDNS_VERSION)
SNAPSHOTTER_VERSION=$(pin SNAPSHOTTER_VERSION)
[ -n "$KUBE_VERSION" ] && [ -n "$KIND_VERSION" ] || fail "could not read the version pins from scripts/build-test-binaries.sh"
ETCD_TAG=${ETCD_VERSION#v}

KIND_MODULE_DIR=""
BIN=""

NODE_RUN_FLAGS=(--privileged)
need_docker() {
  command -v docker >/dev/null || fail "docker is not installed"
  docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info failed)"
  docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1 ||
    fail "the Debian base image $DEBIAN_IMAGE is missing (mmdebstrap --variant=minbase bookworm - | docker import - $DEBIAN_IMAGE)"
  use_docker_shim_if_unprivileged
}

# Where --privileged cannot be granted (see docker-shim/docker), kind runs through the
# shim with the capabilities this machine has, named as Docker 20.10+ knows them.
use_docker_shim_if_unprivileged() {
  if docker run --rm --privileged --entrypoint true "$DEBIAN_IMAGE" >/dev/null 2>&1; then return; fi
  command -v capsh >/dev/null || fail "docker --privileged fails here and capsh (libcap2-bin) is missing to name the capabilities this machine has"
  local bounding caps
  bounding=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  caps=$(capsh --decode="$bounding" | sed 's/.*=//' | tr ',' '\n' | grep -vxE 'cap_(bpf|perfmon|checkpoint_restore)' |
    sed 's/^cap_//' | tr '[:lower:]' '[:upper:]' | sed 's/^/--cap-add=/' | tr '\n' ' ')
  docker run --rm $caps --entrypoint true "$DEBIAN_IMAGE" >/dev/null 2>&1 ||
    fail "docker --privileged fails here, and so does running with this machine's capabilities ($caps)"
  log "docker --privileged fails here (capability bounding set $bounding): kind runs through e2e/kind/docker-shim"
  export KOPIA_E2E_REAL_DOCKER KOPIA_E2E_NODE_CAPS="$caps"
  KOPIA_E2E_REAL_DOCKER=$(command -v docker)
  export PATH="$HERE/docker-shim:$PATH"
  read -r -a NODE_RUN_FLAGS <<<"$caps"
}

build_binaries() {
  local out
  out=$(nice -n 10 "$ROOT/scripts/build-test-binaries.sh" kind etcd kube kube-node containerd crictl coredns pause snapshotter) ||
    fail "building the binaries failed (scripts/build-test-binaries.sh; see its output above)"
  BIN=$(printf '%s\n' "$out" | tail -n1)
  KIND_MODULE_DIR=$(cd "$CACHE/build" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$KIND_MODULE_DIR/images/base/files" ] || fail "kind $KIND_VERSION module has no images/base/files"
}

quietly() { "$@" >/dev/null 2>&1; }

# A short key for a recipe: the given strings plus the content of the given files.
recipe_key() {
  {
    printf '%s\n' "$@"
    for f in "$@"; do if [ -f "$f" ]; then cat "$f"; fi; done
  } | sha256sum | cut -c1-12
}

# ensure_image <tag> <builder function> [args]: present in Docker, loaded from the cache
# archive, or built and then archived.
ensure_image() {
  local tag=$1 archive="$KIND_CACHE/${1//[\/:]/_}.tar"; shift
  if docker image inspect "$tag" >/dev/null 2>&1; then return; fi
  if [ -f "$archive" ]; then
    timed "load $tag" docker load -q -i "$archive" >/dev/null || fail "docker load of $archive failed"
    return
  fi
  timed "build $tag" "$@" "$tag" || fail "building $tag failed"
  mkdir -p "$KIND_CACHE"
  timed "archive $tag" docker save -o "$archive.tmp" "$tag" && mv "$archive.tmp" "$archive"
  forget_other_versions "$tag"
}

# An image's earlier versions (other keys of the same name) go from the cache and from
# Docker once a new one is archived: they are only ever stale.
forget_other_versions() {
  local tag=$1 name=${1%:*} old
  for old in "$KIND_CACHE/${name//\//_}"_*.tar; do
    [ -f "$old" ] && [ "$old" != "$KIND_CACHE/${tag//[\/:]/_}.tar" ] && rm -f "$old"
  done
  for old in $(docker images --format '{{.Repository}}:{{.Tag}}' "$name"); do
    [ "$old" = "$tag" ] || docker rmi "$old" >/dev/null 2>&1 || true
  done
}

build_static_image() { # binary entrypoint(yes|no) tag
  local binary=$1 entrypoint=$2 tag=$3 ctx
  ctx=$(mktemp -d)
  cp "$HERE/node/Dockerfile.static" "$ctx/Dockerfile"
  [ "$entrypoint" = yes ] && printf 'ENTRYPOINT ["/usr/local/bin/%s"]\n' "$binary" >>"$ctx/Dockerfile"
  cp "$BIN/$binary" "$ctx/"
  nice docker build -q --build-arg "BINARY=$binary" -t "$tag" "$ctx" >/dev/null
  local rc=$?; rm -rf "$ctx"; return $rc
}

build_kube_proxy_image() { # tag
  local ctx; ctx=$(mktemp -d)
  cp "$BIN/kube-proxy" "$ctx/"
  nice docker build -q --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -f "$HERE/node/Dockerfile.kube-proxy" -t "$1" "$ctx" >/dev/null
  local rc=$?; rm -rf "$ctx"; return $rc
}

build_base_image() { # tag
  local ctx; ctx=$(mktemp -d)
  # kind's base files, as its own base image installs them: scripts executable, the rest not.
  cp -r "$KIND_MODULE_DIR/images/base/files" "$ctx/kind-files"
  chmod -R u+w,go-w "$ctx/kind-files"
  find "$ctx/kind-files" -type f -exec chmod 0644 {} + && find "$ctx/kind-files" -type d -exec chmod 0755 {} +
  chmod 0755 "$ctx/kind-files/usr/local/bin/"* "$ctx/kind-files/kind/bin/"*
  cp "$HERE/node/node-init.sh" "$ctx/"
  mkdir "$ctx/bin" && cp "$BIN/containerd" "$BIN/ctr" "$BIN/containerd-shim-runc-v2" "$BIN/crictl" "$ctx/bin/"
  nice docker build --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -f "$HERE/node/Dockerfile.base" -t "$1" "$ctx" >&2
  local rc=$?; rm -rf "$ctx"; return $rc
}

# The kubeadm configuration shared by the node image (to list the images kubeadm will
# ask for) and the cluster (kind patches it in): etcd is the version built here.
kubeadm_cluster_patch() {
  cat <<YAML
kind: ClusterConfiguration
etcd:
  local:
    imageTag: "$ETCD_TAG"
YAML
}

# The component images: local tag -> the image kubeadm or containerd names. Filled by
# plan_component_images from kubeadm's own list and kind's containerd configuration.
declare -A COMPONENT_LOCAL=()
plan_component_images() {
  local key=$1 cfg wanted image repo
  cfg=$(mktemp)
  { printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkubernetesVersion: %s\n' "$KUBE_VERSION"; kubeadm_cluster_patch; } >"$cfg"
  wanted=$("$BIN/kubeadm" config images list --config "$cfg" 2>/dev/null | grep -v '/pause:') || { rm -f "$cfg"; fail "kubeadm config images list failed"; }
  rm -f "$cfg"
  # kind's node runs the sandbox image its containerd configuration names.
  wanted+=$'\n'$(sed -n 's/^[[:space:]]*sandbox_image = "\(.*\)"/\1/p' "$KIND_MODULE_DIR/images/base/files/etc/containerd/config.toml")
  for image in $wanted; do
    repo=${image##*/}; repo=${repo%%:*}
    case "$repo" in
      kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy | etcd | coredns | pause) ;;
      *) fail "kubeadm asks for an image this script does not build: $image" ;;
    esac
    COMPONENT_LOCAL["$PREFIX/kind-$repo:$key"]=$image
  done
}

ensure_component_images() {
  local tag repo
  for tag in "${!COMPONENT_LOCAL[@]}"; do
    repo=${tag#"$PREFIX"/kind-}; repo=${repo%%:*}
    case "$repo" in
      kube-proxy) ensure_image "$tag" build_kube_proxy_image ;;
      coredns | pause) ensure_image "$tag" build_static_image "$repo" yes ;;
      *) ensure_image "$tag" build_static_image "$repo" no ;;
    esac
  done
}

# What kind's `kind build node-image` does, minus its registry pulls: Kubernetes' node
# binaries into the base image, the component images imported into the node's containerd
# (pinned, under the names kubeadm and containerd use), then a commit.
build_node_image() { # base-tag tag
  local cid rc=0
  cid=$(docker run -d "${NODE_RUN_FLAGS[@]}" --name "$PREFIX-node-build-$$" --entrypoint sleep "$1" infinity) || return 1
  fill_node_container "$cid" "$2" || rc=$?
  docker rm -f "$cid" >/dev/null 2>&1 || true
  return $rc
}

fill_node_container() { # container tag
  local cid=$1 tag=$2 local_tag
  for b in kubelet kubeadm kubectl; do docker cp "$BIN/$b" "$cid:/usr/bin/$b" || return 1; done
  docker exec "$cid" chown root:root /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl || return 1
  docker exec "$cid" sh -c "echo $KUBE_VERSION >/kind/version && mkdir -p /etc/cni/net.d" || return 1
  docker cp "$HERE/node/10-kopia-e2e-ptp.conflist" "$cid:/etc/cni/net.d/10-kopia-e2e-ptp.conflist" || return 1
  docker exec -d "$cid" containerd || return 1
  docker exec "$cid" sh -c 'for i in $(seq 30); do ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1' || return 1
  for local_tag in "${!COMPONENT_LOCAL[@]}"; do
    docker save "$local_tag" |
      docker exec -i "$cid" ctr -n k8s.io images import --label io.cri-containerd.pinned=pinned --no-unpack - >/dev/null || return 1
    docker exec "$cid" ctr -n k8s.io images tag --force "docker.io/$local_tag" "${COMPONENT_LOCAL[$local_tag]}" >/dev/null || return 1
    docker exec "$cid" ctr -n k8s.io images rm "docker.io/$local_tag" >/dev/null || return 1
  done
  docker exec "$cid" ctr -n k8s.io images ls -q >&2
  docker exec "$cid" sh -c 'pkill containerd; for i in $(seq 30); do pgrep containerd >/dev/null || exit 0; sleep 1; done; exit 1' || return 1
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/kopia-e2e-node-init", "/sbin/init" ]' "$cid" "$tag" >/dev/null
}

node_image() {
  need_docker
  timed "binaries" build_binaries
  # The node's key covers its files and the functions that assemble it, not this whole
  # script, so an unrelated edit here does not rebuild the node.
  local recipe=("$HERE/node/Dockerfile.base" "$HERE/node/Dockerfile.static" "$HERE/node/Dockerfile.kube-proxy" "$HERE/node/10-kopia-e2e-ptp.conflist"
    "$(declare -f kubeadm_cluster_patch plan_component_images build_node_image fill_node_container build_static_image build_kube_proxy_image)")
  local base_key component_key node_key
  base_key=$(recipe_key "$KIND_VERSION" "$CONTAINERD_VERSION" "$CRICTL_VERSION" "$HERE/node/Dockerfile.base" "$HERE/node/node-init.sh")
  component_key=$(recipe_key "$KUBE_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" "$HERE/node/Dockerfile.static" "$HERE/node/Dockerfile.kube-proxy")
  node_key=$(recipe_key "$base_key" "$component_key" "${recipe[@]}")
  NODE_IMAGE="$PREFIX/kind-node:$KUBE_VERSION-$node_key"
  if ! docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 && [ ! -f "$KIND_CACHE/${NODE_IMAGE//[\/:]/_}.tar" ]; then
    plan_component_images "$component_key"
    ensure_component_images
    ensure_image "$PREFIX/kind-base:$base_key" build_base_image
  fi
  ensure_image "$NODE_IMAGE" build_node_image "$PREFIX/kind-base:$base_key"
}

kind_config() {
  cat <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  # One node: a static ptp + host-local CNI configuration in the node image serves the
  # node's pod range (kind's kindnetd image cannot be built here).
  disableDefaultCNI: true
  podSubnet: 10.244.0.0/16
nodes:
  - role: control-plane
kubeadmConfigPatches:
  - |
$(kubeadm_cluster_patch | sed 's/^/    /')
  - |
    kind: KubeletConfiguration
    # This machine has cgroup v1, which Kubernetes 1.35's kubelet refuses unless told.
    failCgroupV1: false
YAML
}

wait_for_system_workloads() { # kubeconfig
  "$BIN/kubectl" --kubeconfig "$1" -n kube-system rollout status deployment/coredns --timeout=180s &&
    "$BIN/kubectl" --kubeconfig "$1" -n kube-system rollout status daemonset/kube-proxy --timeout=180s
}

up() {
  node_image
  local kubeconfig="$KIND_CACHE/$CLUSTER.kubeconfig" config
  config=$(mktemp)
  kind_config >"$config"
  if "$BIN/kind" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    timed "delete stale cluster" "$BIN/kind" delete cluster --name "$CLUSTER" >&2
  fi
  timed "kind create cluster" "$BIN/kind" create cluster --name "$CLUSTER" --image "$NODE_IMAGE" \
    --config "$config" --kubeconfig "$kubeconfig" --wait 300s ${KIND_RETAIN:+--retain} >&2 ||
    { rm -f "$config"; fail "kind create cluster failed (see its output above; node logs: kind export logs --name $CLUSTER)"; }
  rm -f "$config"
  timed "node Ready" "$BIN/kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=300s >&2 ||
    fail "the node did not become Ready"
  timed "coredns and kube-proxy ready" quietly wait_for_system_workloads "$kubeconfig" ||
    fail "coredns or kube-proxy did not become ready ($BIN/kubectl --kubeconfig $kubeconfig -n kube-system get pods)"
  install_snapshot_controller "$kubeconfig"
  echo "$kubeconfig"
}

# The cluster does what the e2e suite needs of it: an image loaded from this Docker engine
# runs in a pod, a claim on the default StorageClass binds and is writable, and cluster
# DNS resolves a Service (coredns reached through kube-proxy's rules).
check() {
  need_docker
  local kubeconfig="$KIND_CACHE/$CLUSTER.kubeconfig" kind_bin="$CACHE/bin/kind" kubectl="$CACHE/bin/kubectl"
  [ -f "$kubeconfig" ] || fail "no kubeconfig for $CLUSTER (run: e2e/kind/cluster.sh up)"
  local image="$PREFIX/kind-smoke:1"
  docker tag "$DEBIAN_IMAGE" "$image"
  timed "kind load docker-image" "$kind_bin" load docker-image "$image" --name "$CLUSTER" >&2 || fail "kind load docker-image failed"
  "$kubectl" --kubeconfig "$kubeconfig" apply -f - >&2 <<YAML || fail "applying the smoke pod failed"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: kind-smoke, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 16Mi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: kind-smoke, namespace: default}
spec:
  containers:
    - name: smoke
      image: $image
      imagePullPolicy: Never
      command: [sh, -c, 'echo written-in-pod >/data/proof && sleep 3600']
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: kind-smoke}}]
YAML
  timed "smoke pod Running" "$kubectl" --kubeconfig "$kubeconfig" wait --for=jsonpath='{.status.phase}'=Running pod/kind-smoke --timeout=180s >&2 ||
    fail "the smoke pod did not run ($kubectl --kubeconfig $kubeconfig describe pod kind-smoke)"
  "$kubectl" --kubeconfig "$kubeconfig" wait --for=jsonpath='{.status.phase}'=Bound pvc/kind-smoke --timeout=60s >&2 || fail "the smoke claim did not bind"
  [ "$("$kubectl" --kubeconfig "$kubeconfig" exec kind-smoke -- sh -c 'for i in 1 2 3 4 5; do [ -s /data/proof ] && break; sleep 1; done; cat /data/proof')" = written-in-pod ] || fail "the smoke pod could not write its claim"
  "$kubectl" --kubeconfig "$kubeconfig" exec kind-smoke -- getent hosts kubernetes.default.svc.cluster.local >&2 ||
    fail "the smoke pod could not resolve the API server's Service through cluster DNS"
  "$kubectl" --kubeconfig "$kubeconfig" delete pod/kind-smoke pvc/kind-smoke --wait=false >&2
  log "check passed: local image ran, claim bound and written, DNS answered"
}

# The VolumeSnapshot API: external-snapshotter's CRDs and its snapshot-controller, from the
# client and main modules at SNAPSHOTTER_VERSION, with the controller image built here.
# (No CSI driver yet: csi-driver-host-path and node-driver-registrar are not served by
# the module proxy here; see the kind tier notes.)
install_snapshot_controller() { # kubeconfig
  local kubeconfig=$1 m=github.com/kubernetes-csi/external-snapshotter client_dir main_dir tag upstream_image k
  client_dir=$(cd "$CACHE/build" && go mod download -json "$m/client/v8@$SNAPSHOTTER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  main_dir=$(cd "$CACHE/build" && go mod download -json "$m/v8@$SNAPSHOTTER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$client_dir/config/crd" ] && [ -d "$main_dir/deploy/kubernetes/snapshot-controller" ] ||
    fail "external-snapshotter $SNAPSHOTTER_VERSION modules lack config/crd or deploy/kubernetes/snapshot-controller"
  tag="$PREFIX/kind-snapshot-controller:$(recipe_key "$SNAPSHOTTER_VERSION" "$HERE/node/Dockerfile.static")"
  ensure_image "$tag" build_static_image snapshot-controller yes
  timed "kind load snapshot-controller" quietly "$BIN/kind" load docker-image "$tag" --name "$CLUSTER" ||
    fail "kind load docker-image $tag failed"
  upstream_image=$(sed -n 's/^[[:space:]]*image: \(.*\):.*/\1/p' "$main_dir/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml")
  # kustomize takes no absolute resource paths: upstream's two manifests are read from a
  # copy beside the overlay.
  k=$(mktemp -d)
  cp "$main_dir/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml" \
    "$main_dir/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml" "$k/"
  cat >"$k/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - rbac-snapshot-controller.yaml
  - setup-snapshot-controller.yaml
images:
  - name: $upstream_image
    newName: ${tag%:*}
    newTag: ${tag##*:}
replicas:
  - name: snapshot-controller
    count: 1
# A fresh one-replica test install has no rolling upgrade to pace: upstream's 35 s
# minReadySeconds would only delay every run.
patches:
  - target: {kind: Deployment, name: snapshot-controller}
    patch: '[{"op": "replace", "path": "/spec/minReadySeconds", "value": 0}]'
YAML
  timed "VolumeSnapshot CRDs" "$BIN/kubectl" --kubeconfig "$kubeconfig" apply --server-side -k "$client_dir/config/crd" >/dev/null &&
    "$BIN/kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Established crd/volumesnapshots.snapshot.storage.k8s.io \
      crd/volumesnapshotcontents.snapshot.storage.k8s.io crd/volumesnapshotclasses.snapshot.storage.k8s.io --timeout=60s >/dev/null ||
    { rm -rf "$k"; fail "installing the VolumeSnapshot CRDs failed"; }
  "$BIN/kubectl" --kubeconfig "$kubeconfig" apply --server-side -k "$k" >/dev/null || { rm -rf "$k"; fail "applying snapshot-controller failed"; }
  rm -rf "$k"
  # Not `wait --for=condition=Available`: with one replica and maxUnavailable 1 that holds
  # before any pod runs.
  timed "snapshot-controller rolled out" quietly "$BIN/kubectl" --kubeconfig "$kubeconfig" -n kube-system rollout status deployment/snapshot-controller --timeout=180s ||
    fail "snapshot-controller did not become Available"
}

# Loads images from this Docker engine into the cluster's node, through the shim where
# --privileged fails (kind's `load` execs into the node with --privileged).
load() {
  need_docker
  local kind_bin="$CACHE/bin/kind"
  [ $# -gt 0 ] || fail "usage: e2e/kind/cluster.sh load IMAGE..."
  [ -x "$kind_bin" ] || fail "kind is not built ($kind_bin)"
  timed "kind load $*" quietly "$kind_bin" load docker-image "$@" --name "$CLUSTER" || fail "kind load docker-image $* failed"
}

down() {
  local kind_bin="$CACHE/bin/kind"
  need_docker
  [ -x "$kind_bin" ] || fail "kind is not built ($kind_bin)"
  "$kind_bin" delete cluster --name "$CLUSTER" >&2 || fail "kind delete cluster failed"
  rm -f "$KIND_CACHE/$CLUSTER.kubeconfig"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  load) shift; load "$@" ;;
  image) node_image && echo "$NODE_IMAGE" ;;
  *) fail "usage: e2e/kind/cluster.sh up|down|check|load IMAGE...|image" ;;
esac
