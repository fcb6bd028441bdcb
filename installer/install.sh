#!/usr/bin/env bash
# Quick start on a fresh machine (embedded profile, no Docker, no root needed):
#   ./installer/install.sh            # asks nothing: defaults, or the flags you pass
# It prepares .venv with lmsd from this checkout, then runs `lmsd install --yes "$@"`, which
# generates secrets, initialises PostgreSQL and NATS, creates the first admin, starts the
# campus and prints the portal's address and how to sign in.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap
echo "==> installing the campus"
.venv/bin/lmsd install --yes "$@"
echo
echo "lmsd is at $PWD/.venv/bin/lmsd — try: .venv/bin/lmsd status"
