#!/usr/bin/env bash
# make image: the kopia-operator image (Dockerfile), built once per set of inputs.
#
#   scripts/image.sh [IMG]     default kopia-operator:<package.json version>
#
# The inputs (Dockerfile, package manifests, the build script, operator/ and generated/
# without tests, which .dockerignore keeps out of the build as well, and the IDs of the
# base images) are hashed; the built image carries the hash as a label and is
# saved as a docker save archive under ~/.cache/kopia-operator/images/ named by version and
# hash. A warm run finds the image in the engine, or loads the archive, and builds nothing.
# Expects an engine (scripts/container-engine.sh up) and the base images
# (scripts/base-images.sh); make image runs both first.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KOPIA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kopia-operator}/images"
LABEL=io.kopia-operator.inputs
KEEP_ARCHIVES=3
mkdir -p "$CACHE"

log() { printf '[image] %s\n' "$*" >&2; }
fail() { printf 'image: %s\n' "$*" >&2; exit 1; }

version=$(node -p "require('./package.json').version")
img="${1:-kopia-operator:$version}"

# The tags the Dockerfile builds FROM, by the image ID the engine has for each.
base_ids() {
  local stages tag
  stages=$(awk 'toupper($1) == "FROM" && toupper($(NF-1)) == "AS" { print $NF }' Dockerfile)
  for tag in $(awk 'toupper($1) == "FROM" { print $2 }' Dockerfile | sort -u); do
    grep -qxF "$tag" <<<"$stages" && continue
    [ "$tag" = scratch ] && continue
    local id
    id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null) || fail "base image $tag is missing (scripts/base-images.sh)"
    echo "$tag $id"
  done
}

inputs_hash() { # base image IDs
  {
    echo "$1"
    find Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json \
      scripts/build-test-binaries.sh scripts/bundle.ts operator generated -type f \
      -not -path '*/__tests__/*' -not -path 'operator/test-support/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}

bases=$(base_ids)
hash=$(inputs_hash "$bases")
archive="$CACHE/kopia-operator-$version-$hash.tar"

if [ "$(docker image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$img" 2>/dev/null || true)" = "$hash" ]; then
  log "$img is current (inputs $hash)"
  exit 0
fi

if [ -f "$archive" ]; then
  log "loading $(basename "$archive")"
  loaded=$(docker load -i "$archive" | sed -n 's/^Loaded image: //p' | head -n 1)
  [ -n "$loaded" ] || fail "$archive holds no tagged image; delete it and run again"
  [ "$loaded" = "$img" ] || docker tag "$loaded" "$img"
  log "$img loaded (inputs $hash)"
  exit 0
fi

# Go modules come through the proxy the host uses; --network host lets the build reach a
# proxy or registry only the host's network reaches (a bridge reaches public ones too).
goproxy=$(go env GOPROXY 2>/dev/null || echo "${GOPROXY:-https://proxy.golang.org,direct}")
gosumdb=$(go env GOSUMDB 2>/dev/null || echo "${GOSUMDB:-sum.golang.org}")
log "building $img (inputs $hash; cold: kopia from its Go module, several minutes)"
start=$(date +%s)
docker build --network host --force-rm \
  --build-arg "GOPROXY=$goproxy" --build-arg "GOSUMDB=$gosumdb" \
  --label "$LABEL=$hash" --label "org.opencontainers.image.version=$version" \
  -t "$img" . >&2 || fail "docker build of $img failed (see above)"
log "built $img in $(($(date +%s) - start))s"

docker save "$img" -o "$archive.partial" && mv "$archive.partial" "$archive"
log "saved $(basename "$archive") ($(du -h "$archive" | cut -f1))"
# Earlier builds this one replaced under the same tag: untagged, and labelled only by this
# script (nothing else builds FROM this image here), so no one else's image is touched.
docker images --quiet --filter dangling=true --filter "label=$LABEL" | xargs -r docker rmi >/dev/null 2>&1 || true
# Older builds of the image are not needed to load this one; keep the newest few.
ls -1t "$CACHE"/kopia-operator-*.tar 2>/dev/null | tail -n +$((KEEP_ARCHIVES + 1)) | xargs -r rm -f
