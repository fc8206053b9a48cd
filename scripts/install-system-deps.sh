#!/usr/bin/env bash
# Installs the Debian packages the test world uses, when missing: openssl (test
# certificates), util-linux (unshare, setpriv for the node agent), rclone (WebDAV server),
# openssh-server (SFTP server) and lua5.1 (the Argo CD health checks' tests: Argo CD runs Lua
# 5.1). Idempotent; a second run does nothing.
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v unshare >/dev/null && command -v setpriv >/dev/null || need+=(util-linux)
command -v rclone >/dev/null || need+=(rclone)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v lua5.1 >/dev/null || need+=(lua5.1)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "install-system-deps: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
