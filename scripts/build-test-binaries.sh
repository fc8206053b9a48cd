#!/usr/bin/env bash
# Builds the real third-party binaries the tests run against, from their Go modules at
# pinned versions, into a cache outside the checkout. A second run finds them and returns
# in seconds. Nothing is downloaded from release pages: only Go modules are fetched.
#
# Usage: scripts/build-test-binaries.sh [kopia|etcd|kube|s3|kind ...]   (default: all but kind)
# Prints the bin directory on the last line of stdout.
set -euo pipefail

KOPIA_VERSION=v0.23.1
ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.35.4
GOFAKES3_VERSION=v1.2.0
KIND_VERSION=v0.33.0

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
    "-s -w -X github.com/kopia/kopia/repo.BuildVersion=${KOPIA_VERSION#v} -X github.com/kopia/kopia/repo.BuildInfo=kopia-operator-test"
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

build_kube() {
  if have kube-apiserver "$KUBE_VERSION" && have kube-controller-manager "$KUBE_VERSION"; then
    log "kube-apiserver and kube-controller-manager $KUBE_VERSION cached"; return
  fi
  log "building kube-apiserver and kube-controller-manager $KUBE_VERSION (the long one: 10-25 min cold)"
  local dir="$WORK/kube-$KUBE_VERSION" staging_version="v0.${KUBE_VERSION#v1.}"
  rm -rf "$dir" && mkdir -p "$dir"
  local upstream_mod
  upstream_mod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  {
    echo "module kopia-operator.test/kube"
    echo
    echo "go 1.25.0"
    echo
    # k8s.io/kubernetes pins GODEBUG defaults; the wrapper must carry the same.
    grep -E '^godebug ' "$upstream_mod" || true
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    # Every staging module is required at v0.0.0 with a local replace upstream; point
    # each at its published release instead. The list is read from upstream's go.mod.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)
GO
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go build -mod=mod -pgo=off -tags=selinux,notest -ldflags "$ld" -o "$dir/out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
  mv "$dir/out/kube-apiserver" "$dir/out/kube-controller-manager" "$BIN/"
  stamp kube-apiserver "$KUBE_VERSION"; stamp kube-controller-manager "$KUBE_VERSION"
}

build_s3() {
  if have gofakes3 "$GOFAKES3_VERSION"; then log "gofakes3 $GOFAKES3_VERSION cached"; return; fi
  log "building gofakes3 $GOFAKES3_VERSION (S3 server for the kopia tier)"
  build_from_wrapper gofakes3 github.com/johannesboyne/gofakes3 "$GOFAKES3_VERSION" \
    github.com/johannesboyne/gofakes3/cmd/gofakes3 "-s -w"
}

build_kind() {
  if have kind "$KIND_VERSION"; then log "kind $KIND_VERSION cached"; return; fi
  log "building kind $KIND_VERSION (the kind e2e tier's cluster tool, about a minute)"
  build_from_wrapper kind sigs.k8s.io/kind "$KIND_VERSION" sigs.k8s.io/kind "-s -w"
}

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(kopia etcd s3 kube)
for t in "${targets[@]}"; do
  case "$t" in
    kopia) build_kopia ;; etcd) build_etcd ;; kube) build_kube ;; s3) build_s3 ;; kind) build_kind ;;
    *) echo "unknown target: $t (kopia|etcd|kube|s3|kind)" >&2; exit 2 ;;
  esac
done
echo "$BIN"
