#!/bin/sh
# Install or upgrade edgegw as a systemd service. Safe to run again: it upgrades in place.
#
#   sudo systemd/install.sh [--root DIR] [--extras opcua,coap,metrics] [--now] [--mosquitto] [--learn]
#
# What it does (paths below are under DIR when --root or DESTDIR is given):
#   /opt/edgegw/venv            a venv with the runtime only (numpy, onnxruntime, aiomqtt ...;
#                               never scikit-learn); --extras adds optional parts
#   /opt/edgegw/models          the shipped ONNX models (replaced on upgrade; keep your own
#                               models elsewhere and give their absolute path in the config)
#   /etc/edgegw/edgegw.yaml     the example config (model: /opt/edgegw/models/pump), only if there
#                               is none; the current example is always written to
#                               /etc/edgegw/edgegw.yaml.example
#   /etc/systemd/system/edgegw.service   the unit, enabled (multi-user.target)
#   --mosquitto                 also /etc/mosquitto/conf.d/edgegw.conf, unless it exists
#   --learn                     also /opt/edgegw/train-venv (edgegw[train]: scikit-learn, for
#                               models learned on the gateway, model: learn) and
#                               edgegw-retrain.service + .timer (hourly, enabled)
#
# On the live system (no root) it reloads systemd and restarts a running edgegw; --now also
# starts it. With --root it only lays out files (systemctl --root enables the unit), so it
# runs without a running systemd, e.g. for tests or to prepare an image.
# Environment: PYTHON (default python3, >= 3.11), PIP_* (pip's own, e.g. PIP_INDEX_URL).
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${DESTDIR:-}
EXTRAS=
START=0
MOSQUITTO=0
LEARN=0
PYTHON=${PYTHON:-python3}

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --root) ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --extras) EXTRAS=$2; shift 2 ;;
    --extras=*) EXTRAS=${1#*=}; shift ;;
    --now) START=1; shift ;;
    --mosquitto) MOSQUITTO=1; shift ;;
    --learn) LEARN=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
done
ROOT=${ROOT%/}
case $EXTRAS in *scikit*|*train*) echo "install.sh: the service installs the runtime only (no train extra)" >&2; exit 2 ;; esac

OPT=/opt/edgegw
VENV=$OPT/venv
ETC=/etc/edgegw
UNIT=/etc/systemd/system/edgegw.service
say() { echo "edgegw install: $*"; }

if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo), or give --root DIR to lay out files under DIR" >&2
  exit 1
fi
"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
  echo "install.sh: needs Python >= 3.11 with venv ($PYTHON; on Debian: apt install python3-venv)" >&2
  exit 1
}

# 1. the venv: created once, upgraded in place after
mkdir -p "$ROOT$OPT"
if [ ! -x "$ROOT$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$ROOT$VENV"
fi
PIP="$ROOT$VENV/bin/python -m pip --disable-pip-version-check -q"
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT
say "building edgegw from $SRC"
$PIP wheel --no-deps -w "$WHEELS" "$SRC"
WHEEL=$(ls "$WHEELS"/edgegw-*.whl)
REQ=$WHEEL
[ -n "$EXTRAS" ] && REQ="edgegw[$EXTRAS] @ file://$WHEEL"
say "installing the runtime${EXTRAS:+ with extras $EXTRAS}"
$PIP install "$REQ"
$PIP install --no-deps --force-reinstall "$WHEEL"   # same version number, new code: replace it
if "$ROOT$VENV/bin/python" -c 'import sklearn' 2>/dev/null; then
  say "warning: scikit-learn is present in $VENV (not needed by the daemon)"
fi
if [ -n "$ROOT" ]; then
  # scripts name the interpreter by the path it has on the target system, not under DIR
  for f in "$ROOT$VENV"/bin/*; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    # "#!DIR/opt/...", or for a long path pip's "#!/bin/sh" + "'''exec' DIR/opt/..." form
    if head -n 3 "$f" | grep -q "$ROOT$VENV/bin/python"; then
      sed -i "1,3s|$ROOT$VENV/|$VENV/|" "$f"
    fi
  done
  sed -i "s|$ROOT$VENV|$VENV|g" "$ROOT$VENV"/bin/activate* 2>/dev/null || true
fi

# 1b. with --learn: a second venv with the training extra, for edgegw-retrain.service only
if [ "$LEARN" = 1 ]; then
  TVENV=$OPT/train-venv
  [ -x "$ROOT$TVENV/bin/python" ] || "$PYTHON" -m venv "$ROOT$TVENV"
  TPIP="$ROOT$TVENV/bin/python -m pip --disable-pip-version-check -q"
  say "installing the training extra in $TVENV (for edgegw-retrain)"
  $TPIP install "edgegw[train] @ file://$WHEEL"
  $TPIP install --no-deps --force-reinstall "$WHEEL"
  if [ -n "$ROOT" ]; then
    for f in "$ROOT$TVENV"/bin/*; do
      [ -f "$f" ] && [ ! -L "$f" ] || continue
      if head -n 3 "$f" | grep -q "$ROOT$TVENV/bin/python"; then
        sed -i "1,3s|$ROOT$TVENV/|$TVENV/|" "$f"
      fi
    done
  fi
fi

# 2. models and docs: replaced as a whole, so removed files do not linger
if [ -d "$SRC/models" ]; then
  rm -rf "$ROOT$OPT/models.new"
  cp -R "$SRC/models" "$ROOT$OPT/models.new"
  rm -rf "$ROOT$OPT/models.old"
  [ -d "$ROOT$OPT/models" ] && mv "$ROOT$OPT/models" "$ROOT$OPT/models.old"
  mv "$ROOT$OPT/models.new" "$ROOT$OPT/models"
  rm -rf "$ROOT$OPT/models.old"
  chmod -R a+rX "$ROOT$OPT/models"
fi
[ -d "$ROOT$OPT/models/pump" ] ||
  say "warning: no models/pump shipped: set profiles.pump.model (or null) in $ETC/edgegw.yaml"
install -m 0644 "$SRC/README.md" "$ROOT$OPT/README.md"
install -m 0644 "$SRC/systemd/README.md" "$ROOT$OPT/SERVICE.md"
install -d -m 0755 "$ROOT$OPT/docs"
install -m 0644 "$SRC"/docs/*.md "$ROOT$OPT/docs/"

# 3. config: the user's file is never touched; the current example sits beside it, its relative
#    `model: models/pump` (relative to the config's folder) made the shipped models' absolute path
install -d -m 0755 "$ROOT$ETC"
sed "s#model: models/pump#model: $OPT/models/pump#" "$SRC/config/example.yaml" > "$ROOT$ETC/.edgegw.yaml.new"
chmod 0644 "$ROOT$ETC/.edgegw.yaml.new"
cp "$ROOT$ETC/.edgegw.yaml.new" "$ROOT$ETC/edgegw.yaml.example"
if [ ! -e "$ROOT$ETC/edgegw.yaml" ]; then
  mv "$ROOT$ETC/.edgegw.yaml.new" "$ROOT$ETC/edgegw.yaml"
  say "wrote $ETC/edgegw.yaml (the example: edit it, then systemctl restart edgegw)"
else
  rm -f "$ROOT$ETC/.edgegw.yaml.new"
  say "kept $ETC/edgegw.yaml (new example: $ETC/edgegw.yaml.example)"
fi
install -d -m 0700 "$ROOT/etc/credstore"
if [ "$MOSQUITTO" = 1 ]; then
  if [ -e "$ROOT/etc/mosquitto/conf.d/edgegw.conf" ]; then
    say "kept /etc/mosquitto/conf.d/edgegw.conf"
  else
    install -d -m 0755 "$ROOT/etc/mosquitto/conf.d"
    install -m 0644 "$SRC/systemd/mosquitto-edgegw.conf" "$ROOT/etc/mosquitto/conf.d/edgegw.conf"
    say "wrote /etc/mosquitto/conf.d/edgegw.conf (restart mosquitto to use it)"
  fi
fi

# 4. the unit, enabled
install -d -m 0755 "$ROOT/etc/systemd/system"
install -m 0644 "$SRC/systemd/edgegw.service" "$ROOT$UNIT"
if [ "$LEARN" = 1 ]; then
  install -m 0644 "$SRC/systemd/edgegw-retrain.service" "$ROOT/etc/systemd/system/edgegw-retrain.service"
  install -m 0644 "$SRC/systemd/edgegw-retrain.timer" "$ROOT/etc/systemd/system/edgegw-retrain.timer"
  if [ -n "$ROOT" ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --root="$ROOT" --quiet enable edgegw-retrain.timer
  elif [ -n "$ROOT" ] || [ ! -d /run/systemd/system ]; then
    install -d -m 0755 "$ROOT/etc/systemd/system/timers.target.wants"
    ln -sf /etc/systemd/system/edgegw-retrain.timer "$ROOT/etc/systemd/system/timers.target.wants/edgegw-retrain.timer"
  else
    systemctl daemon-reload
    systemctl --quiet enable --now edgegw-retrain.timer
  fi
  say "edgegw-retrain.timer enabled (hourly; trains what is due for profiles with model: learn)"
fi
if [ -n "$ROOT" ]; then
  if command -v systemctl >/dev/null 2>&1; then
    systemctl --root="$ROOT" --quiet enable edgegw.service
  else
    install -d -m 0755 "$ROOT/etc/systemd/system/multi-user.target.wants"
    ln -sf "$UNIT" "$ROOT/etc/systemd/system/multi-user.target.wants/edgegw.service"
  fi
  say "installed under $ROOT (unit enabled; nothing started)"
elif [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl --quiet enable edgegw.service
  if systemctl --quiet is-active edgegw.service; then
    systemctl restart edgegw.service
    say "upgraded and restarted edgegw"
  elif [ "$START" = 1 ]; then
    systemctl start edgegw.service
    say "started edgegw"
  else
    say "enabled; start it with: systemctl start edgegw   (logs: journalctl -u edgegw -o cat | jq)"
  fi
else
  systemctl --quiet enable edgegw.service 2>/dev/null ||
    ln -sf "$UNIT" /etc/systemd/system/multi-user.target.wants/edgegw.service
  say "systemd is not running here: unit installed and enabled for the next boot"
fi
"$ROOT$VENV/bin/python" -m edgegw check -c "$ROOT$ETC/edgegw.yaml" >/dev/null 2>&1 ||
  say "warning: $ETC/edgegw.yaml does not pass 'edgegw check' yet: $VENV/bin/edgegw check -c $ETC/edgegw.yaml"
