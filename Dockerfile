# The kopia-operator image: the operator and the populator (commands node /app/dist/bundle/*.mjs,
# one minified file each: scripts/bundle.ts says why) and,
# as its default entrypoint, the mover that runs in Jobs with the real kopia binary.
FROM golang:1.25-bookworm AS kopia
WORKDIR /src
COPY scripts/build-test-binaries.sh scripts/
RUN KOPIA_OPERATOR_CACHE=/out scripts/build-test-binaries.sh kopia

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY operator operator
COPY generated generated
COPY scripts/bundle.ts scripts/
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates rclone openssh-client && rm -rf /var/lib/apt/lists/*
COPY --from=kopia /out/bin/kopia /usr/local/bin/kopia
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
USER 65534:65534
ENV HOME=/kopia KOPIA_CHECK_FOR_UPDATES=false
ENTRYPOINT ["node", "/app/dist/operator/mover/main.js"]
