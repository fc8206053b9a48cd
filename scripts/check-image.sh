#!/usr/bin/env bash
# Checks the kopia-operator image in the real container runtime, run the way the manifests
# run it: read-only root filesystem, uid/gid 65534, every capability dropped, no new
# privileges, no network. Exits non-zero naming the first check that failed.
#
#   scripts/check-image.sh IMG        (make check-image; the kind suite runs it too)
#
# Checks: the image's user is 65534; kopia and rclone (kopia's rclone backend execs it) run;
# the mover verifies (creates) a filesystem repository on emptyDir-like tmpfs mounts and
# exits 0, and without a request exits 1 naming the cause; the operator and the populator
# exit non-zero with a one-line cause when no cluster is reachable; the image holds no
# shell, package manager or other tool beyond node, kopia and rclone.
set -euo pipefail

img="${1:?usage: $0 IMAGE}"
failures=0
pass() { printf 'check-image: ok    %s\n' "$*"; }
failed() { printf 'check-image: FAIL  %s\n' "$*" >&2; failures=$((failures + 1)); }

docker image inspect "$img" >/dev/null 2>&1 || { echo "check-image: $img is not in the engine (make image)" >&2; exit 1; }

# As a restricted pod runs it. Extra arguments go before the image (mounts, env, entrypoint).
restricted() {
  docker run --rm --read-only --user 65534:65534 --cap-drop ALL --security-opt no-new-privileges --network none "$@"
}
# A writable directory for 65534, as the Jobs' emptyDir volumes give the mover.
scratch() { echo "--tmpfs=$1:rw,nosuid,nodev,noexec,uid=65534,gid=65534,mode=0700"; }

# 1. Non-root by default, not only when the pod says so.
user=$(docker image inspect --format '{{.Config.User}}' "$img")
[ "$user" = 65534:65534 ] && pass "image user is $user" || failed "image user is '$user', not 65534:65534"
uid=$(docker run --rm --read-only --network none --entrypoint /usr/local/bin/node "$img" -e 'process.stdout.write(`${process.getuid()}:${process.getgid()}`)' 2>&1) &&
  [ "$uid" = 65534:65534 ] && pass "runs as $uid without --user" || failed "runs as '$uid' without --user"

# 2. The binaries the mover execs.
out=$(restricted --entrypoint /usr/local/bin/kopia "$img" --version 2>&1) && pass "kopia --version: ${out%%$'\n'*}" || failed "kopia --version: $out"
out=$(restricted --entrypoint /usr/local/bin/rclone "$img" version 2>&1) && pass "rclone version: ${out%%$'\n'*}" || failed "rclone version: $out"

# 3. The mover, as a Job runs it (the image's entrypoint, emptyDir mounts).
request='{"operation":"verify","repository":{"backend":{"filesystem":{"path":"/","volume":{"emptyDir":{}}}},"create":{"enabled":true}},"identity":{"username":"verify","hostname":"check-image"}}'
if out=$(restricted "$(scratch /repository)" "$(scratch /kopia)" "$(scratch /cache)" "$(scratch /tmp)" \
  -e KOPIA_PASSWORD=check-image-password -e "KOPIA_MOVER_REQUEST=$request" -e KOPIA_MOVER_TERMINATION_LOG=/tmp/termination-log \
  "$img" 2>&1) && grep -q '"ok":true' <<<"$out" && grep -q '"created":true' <<<"$out"; then
  pass "mover verify creates a filesystem repository (exit 0)"
else
  failed "mover verify: $(tail -n 3 <<<"$out")"
fi
# kopia's rclone backend: kopia execs rclone (serve webdav on loopback) in the same container.
secrets=$(mktemp -d)
mkdir -p "$secrets/rclone" && : >"$secrets/rclone/rclone.conf" && chmod -R a+rX "$secrets"
request='{"operation":"verify","repository":{"backend":{"rclone":{"remotePath":":local:/repository/rclone","configSecretRef":{"name":"r","key":"rclone.conf"}}},"create":{"enabled":true}},"identity":{"username":"verify","hostname":"check-image"}}'
if out=$(restricted "$(scratch /repository)" "$(scratch /kopia)" "$(scratch /cache)" "$(scratch /tmp)" -v "$secrets:/etc/kopia-secrets:ro" \
  -e KOPIA_PASSWORD=check-image-password -e "KOPIA_MOVER_REQUEST=$request" -e KOPIA_MOVER_TERMINATION_LOG=/tmp/termination-log \
  "$img" 2>&1) && grep -q '"ok":true' <<<"$out" && grep -q '"created":true' <<<"$out"; then
  pass "mover verify creates a repository through kopia's rclone backend (kopia execs rclone)"
else
  failed "mover verify on rclone: $(tail -n 3 <<<"$out")"
fi
rm -rf "$secrets"

code=0
out=$(restricted "$img" 2>&1) || code=$?
if [ "$code" -ne 0 ] && grep -q 'KOPIA_MOVER_REQUEST is not set' <<<"$out"; then
  pass "mover without a request exits $code: $(grep -o 'KOPIA_MOVER_REQUEST is not set' <<<"$out" | head -n 1)"
else
  failed "mover without a request exited $code: $out"
fi

# 4. The operator and the populator with no cluster: a non-zero exit and one line saying why.
# A kubeconfig naming a cluster address the container cannot reach (it has no network).
kubeconfig=$(mktemp)
trap 'rm -f "$kubeconfig"' EXIT
chmod 0644 "$kubeconfig"
cat >"$kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters: [{ name: unreachable, cluster: { server: 'https://10.96.0.1:443', insecure-skip-tls-verify: true } }]
users: [{ name: nobody, user: { token: not-a-real-token } }]
contexts: [{ name: unreachable, context: { cluster: unreachable, user: nobody } }]
current-context: unreachable
EOF
for entry in operator:/app/dist/bundle/operator.mjs populator:/app/dist/bundle/populator.mjs; do
  name=${entry%%:*} path=${entry#*:} code=0
  out=$(timeout 120 docker run --rm --read-only --user 65534:65534 --cap-drop ALL --security-opt no-new-privileges --network none \
    -v "$kubeconfig:/etc/kubeconfig:ro" -e KUBECONFIG=/etc/kubeconfig -e POD_NAMESPACE=kopia-system -e POD_NAME="$name-0" \
    --entrypoint /usr/local/bin/node "$img" "$path" 2>&1) || code=$?
  cause=$(grep '"level":"error"' <<<"$out" | grep "$name failed to start" | head -n 1 || true)
  if [ "$code" -ne 0 ] && [ "$code" -ne 124 ] && [ -n "$cause" ] && [ "$(wc -l <<<"$out")" -eq 1 ]; then
    pass "$name without a cluster exits $code: $cause"
  else
    failed "$name without a cluster exited $code: $(tail -n 3 <<<"$out")"
  fi
done

# 5. What the image holds: no shell, no package manager, no tool the mover does not exec.
container=$(docker create "$img")
files=$(docker export "$container" | tar -t)
docker rm "$container" >/dev/null
if grep -qxE '(usr/)?s?bin/(sh|bash|dash|busybox|ash)' <<<"$files"; then failed "a shell is in the image: $(grep -xE '(usr/)?s?bin/(sh|bash|dash|busybox|ash)' <<<"$files" | tr '\n' ' ')"; else pass "no shell (sh, bash, dash, ash, busybox)"; fi
code=0
out=$(restricted --entrypoint /bin/sh "$img" -c true 2>&1) || code=$?
[ "$code" -ne 0 ] && pass "/bin/sh cannot be run (exit $code)" || failed "/bin/sh ran"
executables=$(grep -E '^(usr/(local/)?)?s?bin/[^/]+$' <<<"$files" | sort | tr '\n' ' ')
[ "$executables" = "usr/local/bin/kopia usr/local/bin/node usr/local/bin/rclone " ] &&
  pass "executables: $executables" || failed "unexpected executables: $executables"
grep -qE '^(usr/bin/(apt|dpkg)|var/lib/dpkg/)' <<<"$files" && failed "a package manager is in the image" || pass "no package manager"

size=$(docker image inspect --format '{{.Size}}' "$img")
echo "check-image: $img is $((size / 1000 / 1000)) MB"
[ "$failures" -eq 0 ] || { echo "check-image: $failures check(s) failed" >&2; exit 1; }
echo "check-image: all checks passed"
