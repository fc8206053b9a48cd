#!/usr/bin/env bash
# Local stand-ins for the base images the Dockerfile names, for machines that reach no image
# registry. Each stand-in carries the exact tag the Dockerfile uses, so `docker build` (never
# with --pull) takes it and the Dockerfile users build stays the one tested here. An image
# already present under that tag (the real one, or a stand-in loaded before) is never
# replaced.
#
#   scripts/base-images.sh              every image the Dockerfile's FROM lines name
#   scripts/base-images.sh TAG ...      only these (debian:bookworm-slim, node:20-bookworm-slim,
#                                       golang:<version>-bookworm)
#
# How each is made, and what its cache archive is keyed by (docker save archives under
# ~/.cache/kopia-operator/images/, loaded when the engine lacks the tag):
#   debian:bookworm-slim      kopia-e2e/debian-base:bookworm when present, else
#                             mmdebstrap --variant=minbase bookworm    key: stand-in recipe
#   node:20-bookworm-slim     that Debian base + this machine's node binary and npm, laid out
#                             like the official image (/usr/local/bin/node, /usr/local/lib/
#                             node_modules/npm)                     key: node version
#   golang:X.Y-bookworm       that Debian base + this machine's Go toolchain (/usr/local/go),
#                             git, ca-certificates                  key: go version
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KOPIA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kopia-operator}/images"
RECIPE=3 # bump when a stand-in's recipe changes, so old archives are not loaded
STANDIN_LABEL=io.kopia-operator.stand-in
# Certificate authorities this machine adds to Debian's (e.g. a TLS-intercepting egress
# proxy's): the Go and Node stand-ins trust what the host trusts, so module and npm fetches
# inside a build work as they do on the host. Part of the stand-ins' cache key.
EXTRA_CA_DIR=/usr/local/share/ca-certificates
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
ca_key=$(cat "$EXTRA_CA_DIR"/*.crt 2>/dev/null | sha256sum | cut -c1-8)
mkdir -p "$CACHE"

log() { printf '[base-images] %s\n' "$*" >&2; }
fail() { printf 'base-images: %s\n' "$*" >&2; exit 1; }
present() { docker image inspect "$1" >/dev/null 2>&1; }
archive_name() { echo "$CACHE/standin-$(echo "$1" | tr ':/' '__')-$2.tar"; }

# Present, or loaded from its archive: nothing to build. A stand-in made by an older recipe
# (its label names another archive) is replaced; an image without the label is the real one.
have_or_load() { # tag archive
  if present "$1"; then
    local made
    made=$(docker image inspect --format "{{index .Config.Labels \"$STANDIN_LABEL\"}}" "$1")
    if [ -z "$made" ]; then log "$1 present (not a stand-in: used as it is)"; return 0; fi
    if [ "$made" = "$(basename "$2")" ]; then
      log "$1 present"
      [ -f "$2" ] || save "$1" "$2" # an earlier run stopped before its archive was written
      return 0
    fi
    log "$1 is a stand-in from another recipe ($made); replacing it"
  fi
  if [ -f "$2" ]; then
    log "$1: loading $(basename "$2")"
    docker load -i "$2" >/dev/null && present "$1" && return 0
    log "$1: the archive did not hold it; rebuilding"
  fi
  return 1
}

save() { # tag archive
  docker save "$1" -o "$2.partial" && mv "$2.partial" "$2"
  log "$1 saved to $(basename "$2") ($(du -h "$2" | cut -f1))"
  # Archives of this tag's earlier recipes or versions are not loaded again.
  find "$CACHE" -maxdepth 1 -name "standin-$(echo "$1" | tr ':/' '__')-*" ! -name "$(basename "$2")" -delete
}

# A context directory whose Dockerfile builds FROM a stand-in already present.
build_from() { # tag context-dir archive
  mkdir -p "$2/extra-ca"
  cp "$EXTRA_CA_DIR"/*.crt "$2/extra-ca/" 2>/dev/null || true
  docker build --network host --force-rm --label "$STANDIN_LABEL=$(basename "$3")" -t "$1" "$2" >&2 || fail "building the stand-in $1 failed"
}

debian() {
  local tag=debian:bookworm-slim archive
  archive=$(archive_name "$tag" "r$RECIPE")
  have_or_load "$tag" "$archive" && return
  if present kopia-e2e/debian-base:bookworm; then
    log "$tag: from kopia-e2e/debian-base:bookworm"
    local dir
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' RETURN
    echo 'FROM kopia-e2e/debian-base:bookworm' >"$dir/Dockerfile"
    build_from "$tag" "$dir" "$archive"
  else
    if ! command -v mmdebstrap >/dev/null; then
      [ "$(id -u)" = 0 ] || fail "$tag is missing and mmdebstrap is not installed (apt-get install mmdebstrap)"
      log "installing mmdebstrap (apt)"
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >&2; } ||
        fail "$tag is missing and apt-get install mmdebstrap failed (see above)"
    fi
    log "$tag: mmdebstrap --variant=minbase bookworm (about a minute)"
    mmdebstrap --quiet --variant=minbase bookworm - | docker import -c 'CMD ["bash"]' -c "LABEL $STANDIN_LABEL=$(basename "$archive")" - "$tag" >/dev/null ||
      fail "mmdebstrap | docker import failed for $tag"
  fi
  save "$tag" "$archive"
}

node_image() { # tag (node:<major>-bookworm-slim)
  local tag=$1 major=${1#node:} version archive dir npm_dir
  major=${major%%-*}
  command -v node >/dev/null || fail "$tag is missing and this machine has no node to make a stand-in from"
  version=$(node --version)
  [ "${version%%.*}" = "v$major" ] || fail "$tag is missing and this machine's node is $version, not $major"
  archive=$(archive_name "$tag" "$version-r$RECIPE-ca$ca_key")
  have_or_load "$tag" "$archive" && return
  debian
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm_dir/package.json" ] || fail "cannot find npm's package directory (from $(command -v npm))"
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  cp "$(readlink -f "$(command -v node)")" "$dir/node"
  cp -a "$npm_dir" "$dir/npm"
  # The host's CA bundle, trusted by node (NODE_EXTRA_CA_CERTS) and so by npm.
  cp "$HOST_CA_BUNDLE" "$dir/ca-certificates.crt"
  cat >"$dir/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
CMD ["node"]
EOF
  log "$tag: building from this machine's node $version"
  build_from "$tag" "$dir" "$archive"
  save "$tag" "$archive"
}

go_image() { # tag (golang:<version>-bookworm)
  local tag=$1 want=${1#golang:} version goroot archive dir
  want=${want%-bookworm}
  command -v go >/dev/null || fail "$tag is missing and this machine has no Go toolchain to make a stand-in from"
  version=$(go env GOVERSION)
  case "$version" in "go$want" | "go$want".*) ;; *) fail "$tag is missing and this machine's Go is $version, not $want" ;; esac
  archive=$(archive_name "$tag" "$version-r$RECIPE-ca$ca_key")
  have_or_load "$tag" "$archive" && return
  debian
  goroot=$(go env GOROOT)
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  # The toolchain without its test data, like the official image's.
  tar -C "$goroot" --exclude=./test --exclude=./pkg/obj --exclude='./doc' -cf "$dir/go.tar" .
  cat >"$dir/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/*
ADD go.tar /usr/local/go/
ENV GOLANG_VERSION=placeholder GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOTOOLCHAIN=local
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go && go version
WORKDIR /go
EOF
  sed -i "s/GOLANG_VERSION=placeholder/GOLANG_VERSION=${version#go}/" "$dir/Dockerfile"
  log "$tag: building from this machine's $version (apt-get inside: about a minute)"
  build_from "$tag" "$dir" "$archive"
  save "$tag" "$archive"
}

# The tags the Dockerfile's FROM lines name (stage names excluded).
dockerfile_bases() {
  awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' Dockerfile |
    grep -v -x -F -f <(awk 'toupper($1) == "FROM" && toupper($(NF-1)) == "AS" { print $NF }' Dockerfile) | sort -u
}

tags=("$@")
[ ${#tags[@]} -gt 0 ] || mapfile -t tags < <(dockerfile_bases)
for tag in "${tags[@]}"; do
  case "$tag" in
    debian:bookworm-slim) debian ;;
    node:*-bookworm-slim) node_image "$tag" ;;
    golang:*-bookworm) go_image "$tag" ;;
    scratch) ;;
    *) present "$tag" || fail "no stand-in recipe for $tag, and the engine does not have it" ;;
  esac
done
