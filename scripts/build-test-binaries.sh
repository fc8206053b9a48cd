#!/usr/bin/env bash
# Builds the real third-party binaries the tests run against, from their Go modules at
# pinned versions, into a cache outside the checkout. A second run finds them and returns
# in seconds. Nothing is downloaded from release pages: only Go modules are fetched.
#
# Usage: scripts/build-test-binaries.sh [kopia|etcd|kube|s3|kustomize|helm|prometheus|kind|kube-node|containerd|crictl|coredns|pause|snapshotter ...]
#   (default: kopia etcd s3 kustomize helm prometheus kube; the others are the kind tier's, see e2e/kind/cluster.sh)
# KOPIA_BUILD_INFO names the build in `kopia --version` (the Dockerfile: kopia-operator-image).
# Prints the bin directory on the last line of stdout.
set -euo pipefail

KOPIA_VERSION=v0.23.1
ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.35.4
GOFAKES3_VERSION=v1.2.0
KUSTOMIZE_VERSION=v5.8.1
HELM_VERSION=v4.3.2
# Prometheus 3.x's Go module versions are v0.3xx (v0.316.0 is Prometheus 3.16.0).
PROMETHEUS_VERSION=v0.316.0
KIND_VERSION=v0.33.0
# The kind node image's runtime and add-ons, at the versions kind v0.33.0 and kubeadm
# v1.35.4 name (containerd: kind's base image pin; coredns: kubeadm's default).
CONTAINERD_VERSION=v2.3.4
CRICTL_VERSION=v1.37.0
COREDNS_VERSION=v1.13.1
# VolumeSnapshot CRDs, snapshot-controller and the csi-snapshotter sidecar (kind tier).
SNAPSHOTTER_VERSION=v8.4.0

CACHE="${KOPIA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kopia-operator}"
BIN="$CACHE/bin"
WORK="$CACHE/build"
mkdir -p "$BIN" "$WORK"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" GOTOOLCHAIN=local

log() { printf '[build-test-binaries] %s\n' "$*" >&2; }
have() { [ -x "$BIN/$1" ] && [ -f "$BIN/.$1.version" ] && [ "$(cat "$BIN/.$1.version")" = "$2" ]; }
stamp() { echo "$2" >"$BIN/.$1.version"; }

# `go install mod@version` asks the proxy for the module's version list (to check for
# deprecation) and that request is refused here, so every tool is built from a small
# wrapper module that requires the pinned version and builds the upstream main package.
build_from_wrapper() { # name module version main-package ldflags
  local name=$1 module=$2 version=$3 main=$4 ld=$5 dir="$WORK/$1-$3"
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module kopia-operator.test/%s\n\ngo 1.25\n\nrequire %s %s\n' "$name" "$module" "$version" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$main" >"$dir/tools.go"
  (cd "$dir" && go mod tidy && go build -mod=mod -pgo=off -ldflags "$ld" -o "$BIN/$name" "$main")
  stamp "$name" "$version"
}

build_kopia() {
  if have kopia "$KOPIA_VERSION"; then log "kopia $KOPIA_VERSION cached"; return; fi
  log "building kopia $KOPIA_VERSION (a few minutes on 2 cores)"
  build_from_wrapper kopia github.com/kopia/kopia "$KOPIA_VERSION" github.com/kopia/kopia \
    "-s -w -X github.com/kopia/kopia/repo.BuildVersion=${KOPIA_VERSION#v} -X github.com/kopia/kopia/repo.BuildInfo=${KOPIA_BUILD_INFO:-kopia-operator-test}"
}

build_etcd() {
  if have etcd "$ETCD_VERSION"; then log "etcd $ETCD_VERSION cached"; return; fi
  log "building etcd $ETCD_VERSION through a wrapper module"
  local dir="$WORK/etcd-$ETCD_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  # The server module carries replace directives, so it cannot be `go install`ed; a
  # wrapper main that calls etcdmain.Main builds (dependency replaces are ignored).
  cat >"$dir/go.mod" <<MOD
module kopia-operator.test/etcd

go 1.25
MOD
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf '\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >>"$dir/go.mod"
  (cd "$dir" && go mod tidy &&
    go build -pgo=off -ldflags "-s -w" -o "$BIN/etcd" .)
  stamp etcd "$ETCD_VERSION"
}

# One wrapper module for Kubernetes commands: every staging module is required at v0.0.0
# with a local replace upstream, so the wrapper points each at its published release.
# kube_wrapper_build <wrapper-dir-name> <command...>: builds k8s.io/kubernetes/cmd/<command>
# into $BIN and stamps each with KUBE_VERSION.
kube_wrapper_build() {
  local name=$1; shift
  local dir="$WORK/$name-$KUBE_VERSION" staging_version="v0.${KUBE_VERSION#v1.}"
  rm -rf "$dir" && mkdir -p "$dir"
  local upstream_mod
  upstream_mod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  {
    echo "module kopia-operator.test/$name"
    echo
    echo "go 1.25.0"
    echo
    # k8s.io/kubernetes pins GODEBUG defaults; the wrapper must carry the same.
    grep -E '^godebug ' "$upstream_mod" || true
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "$@"; do
      # A main package cannot be imported, but `go mod tidy -e` still records what it needs.
      printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"
    done
    printf ')\n'
  } >"$dir/tools.go"
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w" pkgs=()
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go build -mod=mod -pgo=off -tags=selinux,notest -ldflags "$ld" -o "$dir/out/" "${pkgs[@]}")
  for cmd in "$@"; do mv "$dir/out/$cmd" "$BIN/"; stamp "$cmd" "$KUBE_VERSION"; done
}

build_kube() {
  if have kube-apiserver "$KUBE_VERSION" && have kube-controller-manager "$KUBE_VERSION"; then
    log "kube-apiserver and kube-controller-manager $KUBE_VERSION cached"; return
  fi
  log "building kube-apiserver and kube-controller-manager $KUBE_VERSION (the long one: 10-25 min cold)"
  kube_wrapper_build kube kube-apiserver kube-controller-manager
}

# The rest of a Kubernetes node, for the kind tier's locally built node image.
KUBE_NODE_COMMANDS=(kubelet kubeadm kubectl kube-scheduler kube-proxy)
build_kube_node() {
  local missing=() cmd
  for cmd in "${KUBE_NODE_COMMANDS[@]}"; do have "$cmd" "$KUBE_VERSION" || missing+=("$cmd"); done
  if [ ${#missing[@]} -eq 0 ]; then log "kubelet, kubeadm, kubectl, kube-scheduler, kube-proxy $KUBE_VERSION cached"; return; fi
  log "building ${missing[*]} $KUBE_VERSION (10-20 min cold; shares the Go build cache with kube)"
  kube_wrapper_build kube-node "${missing[@]}"
}

build_s3() {
  if have gofakes3 "$GOFAKES3_VERSION"; then log "gofakes3 $GOFAKES3_VERSION cached"; return; fi
  log "building gofakes3 $GOFAKES3_VERSION (S3 server for the kopia tier)"
  build_from_wrapper gofakes3 github.com/johannesboyne/gofakes3 "$GOFAKES3_VERSION" \
    github.com/johannesboyne/gofakes3/cmd/gofakes3 "-s -w"
}

# kustomize and helm: the install tests render manifests/ with both (make deploy, the chart).
build_kustomize() {
  if have kustomize "$KUSTOMIZE_VERSION"; then log "kustomize $KUSTOMIZE_VERSION cached"; return; fi
  log "building kustomize $KUSTOMIZE_VERSION"
  build_from_wrapper kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" \
    sigs.k8s.io/kustomize/kustomize/v5 "-s -w"
}

build_helm() {
  if have helm "$HELM_VERSION"; then log "helm $HELM_VERSION cached"; return; fi
  log "building helm $HELM_VERSION (a few minutes on 2 cores)"
  build_from_wrapper helm helm.sh/helm/v4 "$HELM_VERSION" helm.sh/helm/v4/cmd/helm \
    "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
}

# promtool unit-tests the alert rules (manifests/monitoring); prometheus scrapes the real
# metrics endpoints. Both from one wrapper module. Without the builtinassets tag the web UI
# is not embedded (not needed here), and remove_all_sd leaves out the cloud service
# discovery SDKs (static and file targets remain), which halves the build.
build_prometheus() {
  if have prometheus "$PROMETHEUS_VERSION" && have promtool "$PROMETHEUS_VERSION"; then
    log "prometheus and promtool $PROMETHEUS_VERSION cached"; return
  fi
  log "building prometheus and promtool $PROMETHEUS_VERSION"
  local dir="$WORK/prometheus-$PROMETHEUS_VERSION" m=github.com/prometheus/prometheus v=github.com/prometheus/common/version
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module kopia-operator.test/prometheus\n\ngo 1.26.7\n\nrequire %s %s\n' "$m" "$PROMETHEUS_VERSION" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "%s/cmd/prometheus"\n\t_ "%s/cmd/promtool"\n)\n' "$m" "$m" >"$dir/tools.go"
  local release="3.${PROMETHEUS_VERSION#v0.3}" # v0.316.0 -> 3.16.0
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go build -mod=mod -pgo=off -tags "netgo remove_all_sd" \
     -ldflags "-s -w -X $v.Version=$release -X $v.Revision=$PROMETHEUS_VERSION -X $v.Branch=module" -o "$dir/out/" \
     "$m/cmd/prometheus" "$m/cmd/promtool")
  for c in prometheus promtool; do mv "$dir/out/$c" "$BIN/"; stamp "$c" "$PROMETHEUS_VERSION"; done
}

build_kind() {
  if have kind "$KIND_VERSION"; then log "kind $KIND_VERSION cached"; return; fi
  log "building kind $KIND_VERSION (the kind e2e tier's cluster tool, about a minute)"
  build_from_wrapper kind sigs.k8s.io/kind "$KIND_VERSION" sigs.k8s.io/kind "-s -w"
}

build_containerd() {
  if have containerd "$CONTAINERD_VERSION" && have containerd-shim-runc-v2 "$CONTAINERD_VERSION" && have ctr "$CONTAINERD_VERSION"; then
    log "containerd $CONTAINERD_VERSION cached"; return
  fi
  log "building containerd, ctr, containerd-shim-runc-v2 $CONTAINERD_VERSION (kind node runtime, a few minutes)"
  local dir="$WORK/containerd-$CONTAINERD_VERSION" m=github.com/containerd/containerd/v2
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module kopia-operator.test/containerd\n\ngo 1.26.3\n\nrequire %s %s\n' "$m" "$CONTAINERD_VERSION" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "%s/cmd/containerd"\n\t_ "%s/cmd/ctr"\n\t_ "%s/cmd/containerd-shim-runc-v2"\n)\n' "$m" "$m" "$m" >"$dir/tools.go"
  # Static, without the snapshotters a kind node never selects (as kind's base image builds it).
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go build -mod=mod -pgo=off -tags "no_aufs no_zfs no_btrfs no_devmapper" \
     -ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m" -o "$dir/out/" \
     "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2")
  for c in containerd ctr containerd-shim-runc-v2; do mv "$dir/out/$c" "$BIN/"; stamp "$c" "$CONTAINERD_VERSION"; done
}

build_crictl() {
  if have crictl "$CRICTL_VERSION"; then log "crictl $CRICTL_VERSION cached"; return; fi
  log "building crictl $CRICTL_VERSION"
  build_from_wrapper crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl \
    "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
}

build_coredns() {
  if have coredns "$COREDNS_VERSION"; then log "coredns $COREDNS_VERSION cached"; return; fi
  log "building coredns $COREDNS_VERSION (the cluster DNS kubeadm deploys)"
  build_from_wrapper coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns "-s -w"
}

# The sandbox ("pause") container is C in the Kubernetes tree; it is compiled from the
# k8s.io/kubernetes module at KUBE_VERSION, statically, as upstream's image carries it.
build_pause() {
  if have pause "$KUBE_VERSION"; then log "pause from $KUBE_VERSION cached"; return; fi
  log "compiling pause from k8s.io/kubernetes $KUBE_VERSION"
  local src
  src=$(cd "$WORK" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cc -Os -Wall -Werror -static -DVERSION="kopia-operator-$KUBE_VERSION" -o "$BIN/pause" "$src/build/pause/linux/pause.c"
  strip "$BIN/pause"
  stamp pause "$KUBE_VERSION"
}

# external-snapshotter replaces its client module with ./client and pins k8s.io modules by
# replace; a wrapper module requires the published client at the same version and carries
# upstream's k8s.io replaces (read from its go.mod).
build_snapshotter() {
  if have snapshot-controller "$SNAPSHOTTER_VERSION" && have csi-snapshotter "$SNAPSHOTTER_VERSION"; then
    log "snapshot-controller and csi-snapshotter $SNAPSHOTTER_VERSION cached"; return
  fi
  log "building snapshot-controller and csi-snapshotter $SNAPSHOTTER_VERSION"
  local dir="$WORK/snapshotter-$SNAPSHOTTER_VERSION" m=github.com/kubernetes-csi/external-snapshotter
  rm -rf "$dir" && mkdir -p "$dir"
  local upstream_mod
  upstream_mod=$(cd "$dir" && go mod download -json "$m/v8@$SNAPSHOTTER_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  {
    printf 'module kopia-operator.test/snapshotter\n\ngo 1.25\n\n'
    printf 'require (\n\t%s/v8 %s\n\t%s/client/v8 %s\n)\n\n' "$m" "$SNAPSHOTTER_VERSION" "$m" "$SNAPSHOTTER_VERSION"
    grep -E '^replace k8s\.io/' "$upstream_mod"
  } >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "%s/v8/cmd/snapshot-controller"\n\t_ "%s/v8/cmd/csi-snapshotter"\n)\n' "$m" "$m" >"$dir/tools.go"
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go build -mod=mod -pgo=off -ldflags "-s -w -X main.version=$SNAPSHOTTER_VERSION" -o "$dir/out/" \
     "$m/v8/cmd/snapshot-controller" "$m/v8/cmd/csi-snapshotter")
  for c in snapshot-controller csi-snapshotter; do mv "$dir/out/$c" "$BIN/"; stamp "$c" "$SNAPSHOTTER_VERSION"; done
}

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(kopia etcd s3 kustomize helm prometheus kube)
for t in "${targets[@]}"; do
  case "$t" in
    kopia) build_kopia ;; etcd) build_etcd ;; kube) build_kube ;; s3) build_s3 ;;
    kustomize) build_kustomize ;; helm) build_helm ;; prometheus) build_prometheus ;;
    kind) build_kind ;; kube-node) build_kube_node ;; containerd) build_containerd ;; crictl) build_crictl ;;
    coredns) build_coredns ;; pause) build_pause ;; snapshotter) build_snapshotter ;;
    *) echo "unknown target: $t (kopia|etcd|kube|s3|kustomize|helm|prometheus|kind|kube-node|containerd|crictl|coredns|pause|snapshotter)" >&2; exit 2 ;;
  esac
done
echo "$BIN"
