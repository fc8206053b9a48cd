#!/usr/bin/env bash
# A Docker engine for the targets that need one (make image, make e2e), and only the one
# this script started is ever stopped.
#
#   scripts/container-engine.sh up     use the engine that answers `docker info`; otherwise
#                                      install docker.io (apt) when missing, start dockerd,
#                                      wait for it and record its pid
#   scripts/container-engine.sh down   stop the dockerd that `up` started (by its pid);
#                                      an engine it found running is left alone
#
# Under CI=true an engine that cannot be had is a failure (exit 1, one line on stderr);
# elsewhere too: a target that needs an engine cannot pass without one.
# Every call below is one the Docker 20.10 client and engine (Debian 12) understand.
set -euo pipefail

STATE="${KOPIA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kopia-operator}/engine"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
WAIT_SECONDS="${ENGINE_WAIT_SECONDS:-60}"

log() { printf '[container-engine] %s\n' "$*" >&2; }
fail() { printf 'container-engine: %s\n' "$*" >&2; exit 1; }
answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
started_pid() { [ -f "$PIDFILE" ] && cat "$PIDFILE"; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ]; }

install_engine() {
  command -v apt-get >/dev/null || fail "no Docker engine and no apt-get to install docker.io"
  [ "$(id -u)" = 0 ] || fail "no Docker engine; installing docker.io needs root (run as root or start an engine)"
  log "installing docker.io (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || fail "apt-get update failed (see above)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >&2 ||
    fail "apt-get install docker.io failed (see above)"
}

up() {
  if answers; then
    log "using the engine that answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown))"
    return
  fi
  local pid
  pid=$(started_pid || true)
  if alive "$pid"; then
    log "dockerd $pid (started earlier by this script) does not answer yet; waiting"
  else
    command -v dockerd >/dev/null && command -v docker >/dev/null || install_engine
    command -v dockerd >/dev/null || fail "dockerd is not installed after apt-get install docker.io"
    [ "$(id -u)" = 0 ] || fail "no Docker engine answers and starting dockerd needs root"
    mkdir -p "$STATE"
    log "starting dockerd (log: $LOG)"
    # setsid: the daemon outlives this script and the make recipe that called it.
    setsid dockerd >"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
  fi
  local waited=0
  until answers; do
    alive "$pid" || { rm -f "$PIDFILE"; fail "dockerd exited while starting: $(tail -n 1 "$LOG" 2>/dev/null || echo 'no log')"; }
    [ "$waited" -lt "$WAIT_SECONDS" ] || fail "dockerd $pid did not answer docker info within ${WAIT_SECONDS}s (log: $LOG)"
    sleep 1
    waited=$((waited + 1))
  done
  log "dockerd $pid answers after ${waited}s"
}

down() {
  local pid
  pid=$(started_pid || true)
  if [ -z "$pid" ]; then
    log "no dockerd started by this script; leaving the engine alone"
    return
  fi
  if alive "$pid"; then
    log "stopping dockerd $pid (started by this script)"
    kill -TERM "$pid"
    local waited=0
    while alive "$pid" && [ "$waited" -lt 30 ]; do sleep 1; waited=$((waited + 1)); done
    alive "$pid" && fail "dockerd $pid did not stop within 30s"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
