#!/usr/bin/env bash
# Start a rootless Docker engine and a rootless Podman service for an unprivileged
# user, load the parent image into each, and write where they listen:
#
#   sudo bash scripts/rootless_engines.sh          # install, start, load (idempotent)
#   sudo bash scripts/rootless_engines.sh stop     # stop both engines (by their pids)
#
# Run it as root on Debian, after `bash scripts/setup.sh` (it copies the parent image
# from the system engine). No systemd is needed: both engines are started detached, as
# docs/engines.md and the environment notes describe (subuid/subgid ranges, a usable
# /dev/net/tun, the user's XDG_RUNTIME_DIR, an overlay storage.conf for Podman).
#
# Writes $STATE (default /etc/my-docker/rootless-engines.env), read by
# tests/test_engines_rootless.py (`python -m pytest -m rootless_engine tests/test_engines_rootless.py`,
# as root: it runs everything as the user).
#
# Environment:
#   MYDOCKER_ROOTLESS_USER  the user (default: mydocker-rootless), created if missing
#   MYDOCKER_ROOTLESS_STATE where to write the engines' addresses
set -euo pipefail

main() {
  SRC="$(cd "$(dirname "$0")/.." && pwd)"
  R_USER="${MYDOCKER_ROOTLESS_USER:-mydocker-rootless}"
  STATE="${MYDOCKER_ROOTLESS_STATE:-/etc/my-docker/rootless-engines.env}"
  SYSTEM_PYTHON=/usr/bin/python3
  started=$(date +%s)
  step() { printf '\n==> [rootless engines] %s (%s s)\n' "$*" "$(( $(date +%s) - started ))"; }

  if [ "$(id -u)" != 0 ]; then
    echo "Run this as root (sudo bash $0): it installs packages and creates a user." >&2
    exit 1
  fi

  if id -u "$R_USER" >/dev/null 2>&1; then
    HOME_DIR="$(getent passwd "$R_USER" | cut -d: -f6)"
    R_UID="$(id -u "$R_USER")"
  fi
  RUN_DIR="/run/user/${R_UID:-0}"

  as_user() {  # run a command as the user, in its home, with its runtime folder
    runuser -u "$R_USER" -- env -i HOME="$HOME_DIR" USER="$R_USER" LOGNAME="$R_USER" \
      SHELL=/bin/bash XDG_RUNTIME_DIR="$RUN_DIR" \
      PATH="/usr/share/docker.io/contrib:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
      ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
      ${no_proxy:+no_proxy=$no_proxy} \
      $(env | grep -E '^(PIP_[A-Z_]*|SSL_CERT_FILE|REQUESTS_CA_BUNDLE)=' | grep -v "=$HOME" || true) \
      bash -c 'cd "$HOME" && exec "$@"' bash "$@"
  }

  stop_engines() {
    local name pid
    for name in dockerd-rootless podman-service; do
      if [ -f "$HOME_DIR/.my-docker/$name.pid" ]; then
        pid="$(cat "$HOME_DIR/.my-docker/$name.pid")"
        if kill -0 "$pid" 2>/dev/null; then
          kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
          for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
          echo "stopped $name (pid $pid)"
        fi
        rm -f "$HOME_DIR/.my-docker/$name.pid"
      fi
    done
    # Podman leaves a `podman pause` process that holds its user namespace.
    if [ -f "$RUN_DIR/libpod/tmp/pause.pid" ]; then
      pid="$(cat "$RUN_DIR/libpod/tmp/pause.pid")"
      kill -TERM "$pid" 2>/dev/null && echo "stopped podman's pause process (pid $pid)" || true
    fi
  }

  if [ "${1:-}" = stop ]; then
    [ -n "${HOME_DIR:-}" ] && stop_engines
    exit 0
  fi

  step "Packages: rootlesskit, slirp4netns, uidmap, podman"
  missing=()
  for program in rootlesskit slirp4netns newuidmap podman dockerd; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rootlesskit slirp4netns uidmap podman docker.io >/dev/null
  fi
  echo "podman $(podman --version | awk '{print $3}'), rootlesskit $(rootlesskit --version | awk '{print $3}')"

  step "User $R_USER with subordinate uid and gid ranges"
  if ! id -u "$R_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$R_USER"
  fi
  HOME_DIR="$(getent passwd "$R_USER" | cut -d: -f6)"
  R_UID="$(id -u "$R_USER")"
  RUN_DIR="/run/user/$R_UID"
  grep -q "^$R_USER:" /etc/subuid 2>/dev/null || usermod --add-subuids 200000-265535 "$R_USER"
  grep -q "^$R_USER:" /etc/subgid 2>/dev/null || usermod --add-subgids 200000-265535 "$R_USER"
  # No udev here: /dev/net/tun is root-only, and rootlesskit needs it for its tap device.
  if [ ! -e /dev/net/tun ]; then mkdir -p /dev/net && mknod /dev/net/tun c 10 200; fi
  chmod 666 /dev/net/tun
  # The user's runtime folder (what pam_systemd would make), 0700.
  mkdir -p "$RUN_DIR" && chown "$R_USER:$R_USER" "$RUN_DIR" && chmod 700 "$RUN_DIR"
  mkdir -p "$HOME_DIR/.my-docker" && chown "$R_USER:$R_USER" "$HOME_DIR/.my-docker"

  step "A copy of the working tree and the user's venv"
  REPO="$HOME_DIR/my-docker"
  rm -rf "$REPO" && mkdir -p "$REPO"
  (cd "$SRC" && git -c safe.directory="$SRC" ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done \
      | tar --null --no-recursion -T - -cf -) | tar -C "$REPO" --no-same-owner -xf -
  chown -R "$R_USER:$R_USER" "$REPO"
  if [ ! -x "$HOME_DIR/venv/bin/python" ]; then
    as_user "$SYSTEM_PYTHON" -m venv "$HOME_DIR/venv"
  fi
  # What the orchestrator itself needs as a user runs it (not the notebooks' and tests'
  # tools), at requirements.txt's pins; skipped when they did not change since the last time.
  PACKAGES="$(grep -E '^(zenml\[|docker==|ipywidgets==)' "$REPO/requirements.txt" | tr '\n' ' ')"
  STAMP="$HOME_DIR/venv/.my-docker-packages"
  if [ "$(cat "$STAMP" 2>/dev/null)" != "$PACKAGES" ]; then
    # shellcheck disable=SC2086  # one argument per package
    as_user "$HOME_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check $PACKAGES
    echo "$PACKAGES" >"$STAMP"
  fi
  # The package itself, from the user's copy (editable, no dependencies: they are
  # above), so that `python -m orchestrator...` and the registration commands work
  # from any folder, as after README's installation.
  as_user "$HOME_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps -e "$REPO"
  as_user "$HOME_DIR/venv/bin/python" -c "import zenml, docker, orchestrator; print('zenml', zenml.__version__, '| docker', docker.__version__, '| orchestrator from', orchestrator.__path__[0])"

  step "Podman's storage: overlay, not vfs (Debian ships no storage.conf)"
  as_user mkdir -p "$HOME_DIR/.config/containers"
  if [ ! -f "$HOME_DIR/.config/containers/storage.conf" ]; then
    printf '[storage]\ndriver = "overlay"\n' > "$HOME_DIR/.config/containers/storage.conf"
    chown "$R_USER:$R_USER" "$HOME_DIR/.config/containers/storage.conf"
  fi

  step "Starting rootless Docker and rootless Podman's Docker-compatible service"
  stop_engines
  DOCKER_SOCK="unix://$RUN_DIR/docker.sock"
  PODMAN_SOCK="unix://$RUN_DIR/podman.sock"
  as_user bash -c 'setsid dockerd-rootless.sh >"$HOME/.my-docker/dockerd-rootless.log" 2>&1 </dev/null &
                   echo $! >"$HOME/.my-docker/dockerd-rootless.pid"'
  # A pause process killed by an earlier stop leaves Podman's state naming a dead
  # process ("invalid internal status ... podman system migrate"): reset it first.
  as_user podman system migrate >/dev/null 2>&1 || true
  as_user bash -c "setsid podman system service --time=0 $PODMAN_SOCK >\"\$HOME/.my-docker/podman-service.log\" 2>&1 </dev/null &
                   echo \$! >\"\$HOME/.my-docker/podman-service.pid\""
  # A busy machine (CI runs the root test passes beside this) can take a minute to
  # bring Podman's service up: wait by the clock, not by a count of tries.
  for sock in "$DOCKER_SOCK" "$PODMAN_SOCK"; do
    asked_at=$SECONDS
    until as_user env DOCKER_HOST="$sock" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; do
      if [ $((SECONDS - asked_at)) -ge 180 ]; then
        echo "$sock did not answer in 180 s; logs in $HOME_DIR/.my-docker/" >&2
        tail -n 20 "$HOME_DIR/.my-docker/"*.log >&2
        exit 1
      fi
      sleep 0.5
    done
    echo "$sock answers after $((SECONDS - asked_at)) s"
  done

  step "Loading the parent images into each engine (no registry here)"
  IMAGES=(my-docker/zenml-parent:0.98.0-py3.11 zenmldocker/zenml:0.98.0-py3.11)
  for sock in "$DOCKER_SOCK" "$PODMAN_SOCK"; do
    if as_user env DOCKER_HOST="$sock" docker image inspect "${IMAGES[0]}" >/dev/null 2>&1; then
      echo "$sock has ${IMAGES[0]}"
      continue
    fi
    docker save "${IMAGES[@]}" | as_user env DOCKER_HOST="$sock" docker load | tail -2
  done

  mkdir -p "$(dirname "$STATE")"
  cat >"$STATE" <<EOF
# Written by scripts/rootless_engines.sh: rootless engines of an unprivileged user.
ROOTLESS_USER=$R_USER
ROOTLESS_HOME=$HOME_DIR
ROOTLESS_REPO=$REPO
ROOTLESS_PYTHON=$HOME_DIR/venv/bin/python
XDG_RUNTIME_DIR=$RUN_DIR
ROOTLESS_DOCKER_HOST=$DOCKER_SOCK
ROOTLESS_PODMAN_HOST=$PODMAN_SOCK
EOF
  echo "wrote $STATE"
  step "Ready"
}

main "$@"
