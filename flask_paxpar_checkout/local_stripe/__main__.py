"""``python -m flask_paxpar_checkout.local_stripe``: serve the local Stripe on its own."""

from __future__ import annotations

from .command import main

if __name__ == "__main__":
    main()
