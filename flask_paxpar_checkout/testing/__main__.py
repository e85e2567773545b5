"""``python -m flask_paxpar_checkout.testing``: the local Stripe, as ``local_stripe`` runs it."""

from __future__ import annotations

from ..local_stripe.command import main

if __name__ == "__main__":
    main()
