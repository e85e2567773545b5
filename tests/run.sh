#!/usr/bin/env sh
# Install the project with its test extras into .venv and run the suite: on SQLite, then
# on PostgreSQL when one answers (PAXPAR_TEST_DATABASE_URL, else the local default).
# Extra arguments go to pytest, e.g. tests/run.sh -k webhook
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,example,browser]'

# Both suites run even when the first fails; the script fails if either did.
status=0
echo "== tests on SQLite"
PAXPAR_TEST_DATABASE_URL= .venv/bin/python -m pytest "$@" || status=$?

PG_URL="${PAXPAR_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
if .venv/bin/python - "$PG_URL" <<'PY'
import sys
from sqlalchemy import create_engine, text
try:
    with create_engine(sys.argv[1], connect_args={"connect_timeout": 3}).connect() as c:
        c.execute(text("select 1"))
except Exception as exc:
    print(f"PostgreSQL not reachable ({type(exc).__name__})", file=sys.stderr)
    sys.exit(1)
PY
then
    echo "== tests on PostgreSQL"
    PAXPAR_TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest "$@" || status=$?
elif [ "${CI:-}" = "true" ]; then
    echo "CI needs PostgreSQL at $PG_URL" >&2
    exit 1
else
    echo "== PostgreSQL suite skipped: no server at $PG_URL"
fi
exit "$status"
