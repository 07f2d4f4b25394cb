#!/bin/sh
# Remove the edgegw service installed by systemd/install.sh.
#
#   sudo systemd/uninstall.sh [--root DIR] [--purge]
#
# Stops and disables the unit, removes it and /opt/edgegw (venv, shipped models).
# Keeps /etc/edgegw (your config), /var/lib/edgegw (the outbox: alerts not yet delivered
# upstream) and /etc/credstore unless --purge, which removes the config and the outbox too
# (credentials in /etc/credstore are yours: remove them by hand).
set -eu

ROOT=${DESTDIR:-}
PURGE=0
while [ $# -gt 0 ]; do
  case $1 in
    --root) ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
ROOT=${ROOT%/}
say() { echo "edgegw uninstall: $*"; }
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  echo "uninstall.sh: run as root (sudo), or give --root DIR" >&2
  exit 1
fi

UNIT=/etc/systemd/system/edgegw.service
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now edgegw.service 2>/dev/null || true
elif [ -n "$ROOT" ] && command -v systemctl >/dev/null 2>&1 && [ -e "$ROOT$UNIT" ]; then
  systemctl --root="$ROOT" --quiet disable edgegw.service 2>/dev/null || true
fi
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now edgegw-retrain.timer 2>/dev/null || true
fi
rm -f "$ROOT/etc/systemd/system/timers.target.wants/edgegw-retrain.timer" \
  "$ROOT/etc/systemd/system/edgegw-retrain.timer" "$ROOT/etc/systemd/system/edgegw-retrain.service"
rm -f "$ROOT/etc/systemd/system/multi-user.target.wants/edgegw.service" "$ROOT$UNIT"
rm -rf "$ROOT/etc/systemd/system/edgegw.service.d"
rm -rf "$ROOT/opt/edgegw"
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl reset-failed edgegw.service 2>/dev/null || true
fi
say "removed the unit and /opt/edgegw"

if [ "$PURGE" = 1 ]; then
  # DynamicUser= keeps the state in /var/lib/private/edgegw behind a /var/lib/edgegw symlink
  rm -rf "$ROOT/etc/edgegw" "$ROOT/var/lib/edgegw" "$ROOT/var/lib/private/edgegw"
  say "purged /etc/edgegw and /var/lib/edgegw"
else
  say "kept /etc/edgegw and /var/lib/edgegw (use --purge to remove them)"
fi
