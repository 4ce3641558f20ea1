#!/usr/bin/env bash
# Run README's test command (`make test`: every test and every notebook) as an
# unprivileged user in the `docker` group: that is how most Linux users reach
# Docker, and what root never sees (files root can always write, step
# containers running as uid 0).
#
#   sudo bash scripts/as_unprivileged_user.sh
#
# Run it as root on Debian, after `bash scripts/setup.sh --browser --swarm`: it uses the
# Docker engine and the parent image those made. Safe to run again: the user
# and its venv are reused, the copy of the repository is refreshed.
#
# Environment:
#   MYDOCKER_CI_USER       the user (default: mydocker-ci), created if missing
#   UNPRIVILEGED_TESTS     with either of these two set, run only what they name instead
#   UNPRIVILEGED_NOTEBOOKS of `make test`: pytest paths, and notebooks for `pytest --nbmake`
#                          (empty: none), e.g. UNPRIVILEGED_TESTS=tests/test_swarm.py
#
# Tests marked `needs_root` (they mount file systems, create network interfaces
# or start a second dockerd) are deselected for any user but root
# (tests/conftest.py); pytest's summary counts them as "deselected" and names
# the command that runs them. Exits non-zero when any test or notebook fails.
set -euo pipefail

# All in one function, so that bash has read the whole script before running
# any of it: an edit of this file during a long run cannot change what runs.
main() {
  SRC="$(cd "$(dirname "$0")/.." && pwd)"
  CI_USER="${MYDOCKER_CI_USER:-mydocker-ci}"
  # Neither variable set: README's `make test`. Either set: only what they name.
  WHOLE=true
  if [ -n "${UNPRIVILEGED_TESTS+set}${UNPRIVILEGED_NOTEBOOKS+set}" ]; then WHOLE=false; fi
  TESTS="${UNPRIVILEGED_TESTS-}"
  NOTEBOOKS="${UNPRIVILEGED_NOTEBOOKS-}"
  SOCKET=/var/run/docker.sock
  # Debian's own Python: root's Python may live under /root, which others cannot read.
  SYSTEM_PYTHON=/usr/bin/python3

  started=$(date +%s)
  phase_started=$started
  timings=()
  step() { printf '\n==> [%s] %s\n' "$CI_USER" "$*"; }
  phase_done() {  # record how long the phase that just ended took
    local now; now=$(date +%s)
    timings+=("$1: $(( now - phase_started )) s")
    echo "    ($1 took $(( now - phase_started )) s)"
    phase_started=$now
  }

  if [ "$(id -u)" != 0 ]; then
    echo "Run this as root (sudo bash $0): it creates a user and sets the Docker socket's group." >&2
    exit 1
  fi
  if [ ! -x "$SYSTEM_PYTHON" ]; then
    echo "$SYSTEM_PYTHON not found: install Debian's python3 and python3-venv." >&2
    exit 1
  fi
  if [ ! -S "$SOCKET" ]; then
    echo "No Docker engine socket at $SOCKET: run \`make setup\` (as root) first." >&2
    exit 1
  fi

  step "User $CI_USER with a home, in the docker group"
  getent group docker >/dev/null || groupadd --system docker
  if id -u "$CI_USER" >/dev/null 2>&1; then
    echo "user $CI_USER exists"
  else
    useradd --create-home --shell /bin/bash "$CI_USER"
    echo "created user $CI_USER"
  fi
  usermod -aG docker "$CI_USER"
  HOME_DIR="$(getent passwd "$CI_USER" | cut -d: -f6)"
  REPO="$HOME_DIR/my-docker"
  VENV="$HOME_DIR/venv"

  # The docker group reaches the engine through its socket, as Debian's docker.io
  # sets it up (a daemon started by hand may have left it root-only).
  chgrp docker "$SOCKET"
  chmod 660 "$SOCKET"
  echo "$SOCKET: $(stat -c '%U:%G %A' "$SOCKET")"

  step "A fresh copy of the working tree in $REPO"
  # The repository may be under /root (mode 700): the user gets its own copy,
  # of what git would see (uncommitted changes included, ignored files not).
  list_files() {
    if git -C "$SRC" -c safe.directory="$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git -C "$SRC" -c safe.directory="$SRC" ls-files -z --cached --others --exclude-standard
    else
      (cd "$SRC" && find . -path ./.git -prune -o \( -type f -o -type l \) -print0)
    fi
  }
  rm -rf "$REPO"
  mkdir -p "$REPO"
  list_files \
    | (cd "$SRC" && while IFS= read -r -d '' f; do  # not the tracked files deleted here
         if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi
       done) \
    | tar -C "$SRC" --null --no-recursion -T - -cf - \
    | tar -C "$REPO" --no-same-owner -xf -
  chown -R "$CI_USER:$CI_USER" "$REPO"
  echo "copied $(find "$REPO" -type f | wc -l) files from $SRC"

  # Everything the user runs gets this environment: root's (proxies, CA and pip
  # settings stay), minus what points into root's home (pyenv, caches, configs
  # the user cannot read) or at root's Python, with the user's home and venv.
  ROOT_HOME="$(getent passwd root | cut -d: -f6)"
  as_user() {
    local unset_args=() name
    for name in $(compgen -e); do
      case "$name" in
        VIRTUAL_ENV|PYTHONPATH|PYTHONHOME|PYENV_VERSION|ZENML_CONFIG_PATH|OLDPWD)
          unset_args+=(-u "$name") ;;
        *)
          if [[ "$ROOT_HOME" != / && "${!name}" == *"$ROOT_HOME"* ]]; then
            unset_args+=(-u "$name")
          fi ;;
      esac
    done
    runuser -u "$CI_USER" -- env "${unset_args[@]}" \
      HOME="$HOME_DIR" USER="$CI_USER" LOGNAME="$CI_USER" SHELL=/bin/bash \
      PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" \
      ZENML_ANALYTICS_OPT_IN=false \
      bash -c 'cd "$0" && exec "$@"' "$REPO" "$@"
  }
  phase_done "user and copy"

  step "The user's venv ($VENV, from $SYSTEM_PYTHON) with requirements.txt"
  if [ -x "$VENV/bin/python" ]; then
    echo "reusing $VENV ($("$VENV/bin/python" --version))"
  else
    as_user "$SYSTEM_PYTHON" -m venv "$VENV"
    echo "created $VENV ($("$VENV/bin/python" --version))"
  fi
  as_user python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  as_user python -c 'import sys, importlib.metadata as m; print("Python", sys.version.split()[0], "| zenml", m.version("zenml"), "| docker", m.version("docker"))'
  phase_done "venv"

  step "The engine answers the user (docker group, no root)"
  as_user python -m orchestrator.machine.engine
  phase_done "engine check"

  failed=()
  if [ "$WHOLE" = true ]; then
    # README's test command, as a user runs it: the set-up finds everything in
    # place (root provisioned it), then the whole suite and every notebook.
    step "make test PYTHON=python (README's test command)"
    as_user make test PYTHON=python || failed+=("make test")
    phase_done "make test"
  fi
  if [ "$WHOLE" = false ] && [ -n "$TESTS" ]; then
    step "python -m pytest $TESTS"
    # shellcheck disable=SC2086  # TESTS may name several paths
    as_user python -m pytest $TESTS || failed+=("tests")
    phase_done "tests"
  fi
  if [ "$WHOLE" = false ] && [ -n "$NOTEBOOKS" ]; then
    step "python -m pytest --nbmake --nbmake-timeout=600 $NOTEBOOKS"
    # shellcheck disable=SC2086
    as_user python -m pytest --nbmake --nbmake-timeout=600 --durations=0 $NOTEBOOKS || failed+=("notebooks")
    phase_done "notebooks"
  fi

  echo
  echo "As $CI_USER, in $(( $(date +%s) - started )) s:"
  printf '    %s\n' "${timings[@]}"
  if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED as $CI_USER: ${failed[*]}" >&2
    exit 1
  fi
  echo "All passed as $CI_USER."
}

main "$@"
