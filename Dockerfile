# The kopia-operator image: one image for the operator, the populator and the mover
# (docs/adr/0011-images.md). Its entrypoint is the mover, which mover Jobs run without a
# command; the Deployments name the operator's and the populator's entry points, one
# minified file each (scripts/bundle.ts says why):
#   node /app/dist/bundle/operator.mjs    the operator
#   node /app/dist/bundle/populator.mjs   the populator
# The final stage is FROM scratch: node and the shared libraries it loads, kopia, rclone
# (kopia's rclone backend execs it), CA certificates and passwd/group entries. No shell,
# no package manager. Runs as 65534:65534 on a read-only root filesystem.
#
# Builds with BuildKit and with the legacy builder alike (no BuildKit-only syntax): the
# Docker 20.10 engine some test machines run has no buildx. `make image` builds it.

# kopia from its Go module at the version the tests pin (scripts/build-test-binaries.sh).
FROM golang:1.26-bookworm AS kopia
ARG GOPROXY=https://proxy.golang.org,direct
ARG GOSUMDB=sum.golang.org
ENV GOPROXY=${GOPROXY} GOSUMDB=${GOSUMDB}
WORKDIR /src
COPY scripts/build-test-binaries.sh scripts/
RUN KOPIA_OPERATOR_CACHE=/out KOPIA_BUILD_INFO=kopia-operator-image scripts/build-test-binaries.sh kopia >/dev/null && /out/bin/kopia --version

# rclone and the CA bundle from Debian's packages (the same rclone the kopia test tier runs).
FROM debian:bookworm-slim AS debian
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates rclone \
 && rm -rf /var/lib/apt/lists/* \
 && rclone version

# The compiled operator and its production dependencies.
FROM node:20-bookworm-slim AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY generated generated
COPY operator operator
COPY scripts/bundle.ts scripts/
# Type declarations, source maps and docs are never loaded at run time: ~40 of ~85 MB.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf node_modules/.cache \
 && find node_modules dist/bundle -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \) -delete

# The root filesystem of the final image: node and exactly the libraries `ldd` says it and
# rclone load, at their own paths; users; an empty /tmp for a mounted emptyDir.
FROM node:20-bookworm-slim AS rootfs
COPY --from=debian /usr/bin/rclone /usr/local/bin/rclone
RUN set -eu; \
    mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/kopia /rootfs/app; \
    for bin in /usr/local/bin/node /usr/local/bin/rclone; do \
      cp --parents "$bin" /rootfs/; \
      for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do \
        cp --parents -L "$lib" /rootfs/; \
      done; \
    done; \
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >/rootfs/etc/passwd; \
    printf 'root:x:0:\nnogroup:x:65534:\n' >/rootfs/etc/group; \
    printf 'hosts: files dns\n' >/rootfs/etc/nsswitch.conf; \
    chmod 1777 /rootfs/tmp; \
    chown 65534:65534 /rootfs/kopia

FROM scratch
COPY --from=rootfs /rootfs/ /
COPY --from=debian /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=kopia /out/bin/kopia /usr/local/bin/kopia
COPY --from=build /app/package.json /app/package.json
COPY --from=build /app/node_modules /app/node_modules
COPY --from=build /app/dist /app/dist
ENV PATH=/usr/local/bin \
    HOME=/kopia \
    NODE_ENV=production \
    KOPIA_CHECK_FOR_UPDATES=false
WORKDIR /app
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/operator/mover/main.js"]
