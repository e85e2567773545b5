#!/usr/bin/env sh
# Run the example host service on a fresh machine: make .venv, install, serve.
# Without STRIPE_SECRET_KEY it runs on the local Stripe (no account, no real payment).
# Usage (from anywhere):  examples/run.sh      PORT=8000 examples/run.sh
set -eu

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv ..."
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c 'import flask_login, flask_paxpar_checkout' 2>/dev/null; then
    echo "Installing flask-paxpar-checkout with the example's extras ..."
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[example]'
fi

PORT="${PORT:-5000}"
export PORT
exec .venv/bin/python -m examples.host_app
