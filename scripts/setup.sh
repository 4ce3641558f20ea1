#!/usr/bin/env bash
# Install and start everything the orchestrator, its notebooks and tests need.
#
#   bash scripts/setup.sh              Python packages, a Docker engine, the parent image
#   bash scripts/setup.sh --browser    ... plus headless Chromium for the browser test
#   bash scripts/setup.sh --swarm      ... plus the local two-node Docker Swarm (as root) that the
#                                      my_swarm tests and notebook 8 use; `make swarm-down` ends it
#
# Safe to run again: every step does nothing when its work is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

with_browser=false
with_swarm=false
for arg in "$@"; do
  case "$arg" in
    --browser) with_browser=true ;;
    --swarm) with_swarm=true ;;
    *) echo "unknown option: $arg (known: --browser, --swarm)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }

step "Python packages (requirements.txt)"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements.txt

step "A Docker engine that answers"
"$PYTHON" -m orchestrator.machine.engine

step "The parent image for step containers (built offline if no registry answers)"
"$PYTHON" -m orchestrator.machine.base_image

if $with_browser; then
  step "Headless Chromium for the browser test"
  if [ -x /usr/bin/chromium ]; then
    echo "chromium is installed"
  elif [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    echo "installed Debian's chromium"
  else
    echo "Install Chromium (Debian/Ubuntu: apt-get install chromium) for the browser test." >&2
    exit 1
  fi
fi
if $with_swarm; then
  step "The local two-node swarm (two Docker engines, a registry on 127.0.0.1:5000)"
  if [ "$(id -u)" = 0 ]; then
    if ! command -v docker-registry >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
      echo "installed Debian's docker-registry"
    fi
    "$PYTHON" -m orchestrator.machine.swarm up   # does nothing when it is up already
  elif swarm_status="$("$PYTHON" -m orchestrator.machine.swarm status 2>&1)" \
       && grep -q ': up$' <<<"$swarm_status"; then
    # (read whole first: `status | grep -q` closes the pipe at the first match, and
    # the status command's next line then failed with BrokenPipeError under pipefail)
    echo "the local swarm is up"
  else
    echo "The local swarm starts its own Docker engines, which needs root: run \`sudo make swarm\`." >&2
    exit 1
  fi
fi
echo
echo "Setup done."
