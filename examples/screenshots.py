"""Take the README's screenshots, ``docs/checkout.png``, ``docs/prices.png`` and
``docs/account.png``, from the browser test of the whole journey.

Same setup as that test: the example app served on 127.0.0.1, the local Stripe beside it,
Debian's Chromium driven by Playwright, no network. From the repo root::

    .venv/bin/python -m examples.screenshots
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOURNEY = "tests/test_browser_journey.py::test_subscribe_buy_renew_and_cancel"
SHOTS = ("checkout.png", "prices.png", "account.png")


def take(out: Path) -> None:
    """Run the journey with ``SCREENSHOT_DIR`` set; fail if it fails."""
    env = {**os.environ, "SCREENSHOT_DIR": str(out.resolve())}
    command = [sys.executable, "-m", "pytest", JOURNEY, "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"the journey failed (exit {done.returncode}): no screenshots")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="default: docs/")
    args = parser.parse_args()
    take(args.out)
    print("wrote " + ", ".join(str(args.out / name) for name in SHOTS))


if __name__ == "__main__":
    main()
