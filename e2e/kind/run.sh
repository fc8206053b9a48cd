#!/usr/bin/env bash
# make e2e: the operator in a real kind cluster. Needs a Docker engine and the kind and
# kubectl commands. Builds the image, loads it into a fresh cluster, deploys manifests/
# and checks a filesystem Repository becomes Ready through a real kubelet.
# (Not runnable on machines without Docker; the control-plane tier covers the operator there.)
set -euo pipefail
cd "$(dirname "$0")/../.."
cluster=kopia-operator-e2e
image=kopia-operator:e2e
for tool in docker kind kubectl; do command -v "$tool" >/dev/null || { echo "make e2e: $tool is not installed" >&2; exit 1; }; done
trap 'kind delete cluster --name "$cluster" >/dev/null 2>&1 || true' EXIT
docker build -t "$image" .
kind create cluster --name "$cluster" --wait 120s
kind load docker-image "$image" --name "$cluster"
export KUBECONFIG
KUBECONFIG=$(mktemp)
kind get kubeconfig --name "$cluster" >"$KUBECONFIG"
node --import tsx scripts/apply.ts manifests
kubectl -n kopia-system set image deployment/kopia-operator operator="$image"
kubectl -n kopia-system set env deployment/kopia-operator MOVER_IMAGE="$image"
kubectl -n kopia-system rollout status deployment/kopia-operator --timeout=180s
kubectl create namespace e2e
kubectl -n e2e create secret generic kopia-repo --from-literal=KOPIA_PASSWORD=e2e-password
kubectl -n e2e apply -f - <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: kopia-nas}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: kopia.io/v1alpha1
kind: Repository
metadata: {name: nas}
spec:
  backend: {filesystem: {path: /, volume: {persistentVolumeClaim: {claimName: kopia-nas}}}}
  passwordSecretRef: {name: kopia-repo, key: KOPIA_PASSWORD}
  create: {enabled: true}
YAML
kubectl -n e2e wait repository/nas --for=condition=Ready --timeout=300s
kubectl -n e2e get repository nas -o wide
echo "make e2e: passed"
