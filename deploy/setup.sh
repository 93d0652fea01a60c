#!/usr/bin/env bash
# Fresh machine -> running Railyard. Needs Python 3.11+, Java 17+ and Maven on PATH.
#   bash deploy/setup.sh demo    installs everything, runs the end-to-end demo (embedded defaults)
#   bash deploy/setup.sh test    installs everything, runs lint, types and the whole test suite
# Everything lands in the checkout: .venv/ (Python), .railyard/ (broker, ClickHouse, logs);
# Kafka's jars are resolved from Maven Central into ~/.cache/railyard on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || { echo "setup: Python 3.11+ is required" >&2; exit 2; }
command -v java >/dev/null || { echo "setup: Java 17+ is required (the Kafka broker)" >&2; exit 2; }
command -v mvn >/dev/null || { echo "setup: Maven is required (resolves Kafka's jars)" >&2; exit 2; }

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python dependencies into .venv (once)"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  rm -f .venv/.installed-*; touch "$stamp"
fi

# The hot path compiled by mypyc (streams/compiled.py, deploy/compile.py): only when the
# sources changed since the last build. RAILYARD_PURE_PYTHON=1 skips it: the same code,
# interpreted, slower.
if [ "${RAILYARD_PURE_PYTHON:-}" != "1" ]; then
  .venv/bin/python deploy/compile.py
fi

# The demo delivers Stripe invoices to stripe-mock (connectors/rails/sandbox). Best effort:
# without Go the Stripe peer tries the same install when it starts, and says so if it fails.
if command -v go >/dev/null && ! command -v stripe-mock >/dev/null \
    && [ ! -x "$(go env GOPATH 2>/dev/null)/bin/stripe-mock" ]; then
  echo "setup: installing stripe-mock (go install github.com/stripe/stripe-mock@latest)"
  go install github.com/stripe/stripe-mock@latest >/dev/null 2>&1 \
    || echo "setup: could not install stripe-mock; the demo's Stripe step will need it" >&2
fi

case "${1:-}" in
  demo)
    shift; exec .venv/bin/railyard demo "$@" ;;
  test)
    shift
    # The console's browser tests (tests/integration/test_console_browser.py) drive Debian's
    # headless Chromium through its chromedriver; nothing is downloaded by Selenium.
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
      echo "setup: installing chromium and chromium-driver (apt-get, once)"
      sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
      { $sudo apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
          || { $sudo apt-get update -q >/dev/null && \
               $sudo apt-get install -y -q chromium chromium-driver >/dev/null; }; } \
        || echo "setup: could not install chromium; the console's browser tests will fail" \
                "(RAILYARD_SKIP_BROWSER=1 skips them)" >&2
    fi
    echo "setup: lint (ruff), types (mypy strict on the whole package), then pytest"
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy streams connectors
    # Two workers (RAILYARD_TEST_WORKERS), a test file each at a time: every worker starts
    # its own broker and every test its own namespace, so they never see each other's data.
    exec .venv/bin/pytest -n "${RAILYARD_TEST_WORKERS:-2}" --dist loadfile "$@" ;;
  *)
    echo "usage: bash deploy/setup.sh demo|test" >&2; exit 2 ;;
esac
