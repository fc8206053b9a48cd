# kopia-operator. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
NODE_TS := node --import tsx
JEST := node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js

.PHONY: help setup system-deps binaries generate check-generated build typecheck lint lint-manifests test test-unit test-kopia test-control-plane bench run image check-image deploy undeploy chart e2e clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 22

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

setup: node_modules/.package-lock.json system-deps binaries ## install npm and Debian packages, build the test binaries (cached)

system-deps: ## Debian packages the test world needs (openssl, util-linux, rclone, openssh-server, lua5.1)
	@scripts/install-system-deps.sh

binaries: ## build kopia, etcd, kube-apiserver, kube-controller-manager, kustomize, helm, prometheus, promtool from Go modules (cached in ~/.cache)
	@scripts/build-test-binaries.sh >/dev/null

generate: node_modules/.package-lock.json ## regenerate TS types and CRDs from schemas/, and the Argo CD health snippet from its Lua
	$(NODE_TS) scripts/generate.ts
	$(NODE_TS) scripts/gitops-health.ts

check-generated: node_modules/.package-lock.json ## fail when generated files are stale
	$(NODE_TS) scripts/generate.ts --check
	$(NODE_TS) scripts/gitops-health.ts --check

build: node_modules/.package-lock.json ## compile to dist/, and the operator and populator to one file each (dist/bundle/)
	npm run build

typecheck: node_modules/.package-lock.json
	npx tsc -p tsconfig.json --noEmit

lint: node_modules/.package-lock.json typecheck lint-manifests ## eslint, prettier, type check and the example manifests
	npx eslint .
	npx prettier --check . >/dev/null

lint-manifests: node_modules/.package-lock.json ## validate kopia.io manifests offline (DIR=... to choose)
	$(NODE_TS) operator/cli/lint.ts $(or $(DIR),examples)

# The control-plane files run one at a time: each starts an operator that watches the whole
# cluster, and two at once would act on each other's objects.
test: setup check-generated lint ## everything CI runs: generated-file check, lint, unit, kopia and control-plane tiers
	@mkdir -p .tmp && rm -f .tmp/jest-*.json
	@status=0; \
	 $(JEST) --selectProjects unit kopia --maxWorkers=2 --json --outputFile=.tmp/jest-unit-kopia.json || status=1; \
	 $(JEST) --selectProjects control-plane --maxWorkers=1 --json --outputFile=.tmp/jest-control-plane.json || status=1; \
	 node -e "let p = 0, f = 0, s = 0; for (const file of process.argv.slice(1)) { const r = JSON.parse(require('fs').readFileSync(file, 'utf8')); p += r.numPassedTests; f += r.numFailedTests + r.numRuntimeErrorTestSuites; s += r.numPendingTests; } console.log('tests: ' + p + ' passed, ' + f + ' failed, ' + s + ' skipped')" .tmp/jest-unit-kopia.json .tmp/jest-control-plane.json; \
	 exit $$status

test-unit: node_modules/.package-lock.json
	$(JEST) --selectProjects unit

test-kopia: setup
	$(JEST) --selectProjects kopia

test-control-plane: setup
	$(JEST) --selectProjects control-plane --maxWorkers=1

bench: setup build ## benchmarks; results in bench/results/
	$(NODE_TS) scripts/bench.ts

run: setup ## start the local control plane, node agent and operator; prints how to use it
	$(NODE_TS) scripts/run-local.ts $(ARGS)

# make deploy: the kustomize build of $(BASE) with the image set to $(IMG) through `images:`,
# server-side applied to the cluster of the current kubeconfig; what the last deploy applied
# and this one does not is pruned (never CRDs, namespaces or other data: docs/adr/0012-install.md).
# Needs Node and, for the build, kustomize on PATH or kubectl >= 1.27 (KUSTOMIZE='kubectl kustomize' to choose).
VERSION := $(shell node -p "require('./package.json').version")
IMG ?= kopia-operator:$(VERSION)
BASE ?= manifests
export KUSTOMIZE

image: ## build the image (IMG=...; default kopia-operator:<version>), cached by its inputs in ~/.cache
	@scripts/container-engine.sh up
	@scripts/base-images.sh
	@scripts/image.sh $(IMG)

check-image: image ## run the image as a restricted pod would (read-only, uid 65534, no capabilities) and check its entry points
	@scripts/check-image.sh $(IMG)

deploy: node_modules/.package-lock.json ## install or upgrade: build manifests/ with IMG=..., apply, prune
	$(NODE_TS) scripts/deploy.ts deploy --base $(BASE) --image $(IMG)

chart: node_modules/.package-lock.json ## regenerate the PrometheusRule from the rule file, and the Helm chart (manifests/chart/) from the kustomize build of manifests/
	$(NODE_TS) scripts/generate-monitoring.ts
	$(NODE_TS) scripts/generate-chart.ts

undeploy: node_modules/.package-lock.json ## remove the install; keeps the CRDs (users' objects) and the namespace
	$(NODE_TS) scripts/deploy.ts undeploy --base $(BASE)

e2e: setup ## the kind suite: a cluster built here, our images, make deploy, tests through kubectl (needs root or a Docker engine)
	e2e/kind/run.sh

clean:
	rm -rf dist coverage
