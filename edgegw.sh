#!/usr/bin/env bash
# One entry point for a fresh Debian / Raspberry Pi OS machine. No root needed for `demo`.
#   ./edgegw.sh demo [ARGS]   create .venv, install edgegw with the demo extra, run `edgegw demo`
#   ./edgegw.sh test [ARGS]   install test peers (mosquitto, libcoap) if missing, then run pytest
#   ./edgegw.sh lint          ruff check, ruff format --check and mypy (what CI enforces)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
VENV=${EDGEGW_VENV:-.venv}
PY=${PYTHON:-python3}

venv() {  # $1: extras
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
  fi
  local stamp="$VENV/.edgegw-$1" want
  want=$(cat pyproject.toml | sha1sum | cut -c1-12)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[$1]"
    echo "$want" > "$stamp"
  fi
}

need_pkgs() {  # install Debian packages for the test peers when their commands are missing
  local missing=()
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
  command -v coap-client-notls >/dev/null || missing+=(libcoap3-bin)
  [ ${#missing[@]} -eq 0 ] && return 0
  local SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing test peers: ${missing[*]}"
  $SUDO apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

cmd=${1:-help}; shift || true
case "$cmd" in
  demo)
    venv demo
    case ":$PATH:" in *":$PWD/$VENV/bin:"*) ;; *) echo "edgegw is in $VENV/bin: export PATH=\"$PWD/$VENV/bin:\$PATH\" to use it as plain 'edgegw'";; esac
    exec "$VENV/bin/edgegw" demo "$@" ;;
  test)
    need_pkgs
    venv "dev,train,demo"
    export PATH="/usr/sbin:$PATH"
    exec "$VENV/bin/python" -m pytest "$@" ;;
  lint)
    venv "dev,train,demo"
    "$VENV/bin/ruff" check src tests benchmarks
    "$VENV/bin/ruff" format --check src tests benchmarks
    exec "$VENV/bin/mypy" ;;
  *)
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
