"""Domain signals sent once the transaction that made the change has committed."""

from __future__ import annotations

from . import signals
from .database import Transaction
from .ledger import CreditChange
from .subscriptions import Applied


def announce_credits(tx: Transaction, change: CreditChange | None) -> None:
    """``credits_changed`` for ``change``, after the commit."""
    if change is None:
        return
    tx.after_commit(
        lambda: signals.send(
            signals.credits_changed,
            user_id=change.user_id,
            before=change.before,
            after=change.after,
            reason=change.reason,
            stripe_object_id=change.stripe_object_id,
        )
    )


def announce_subscription(tx: Transaction, applied: Applied) -> None:
    """``subscription_changed`` for a changed record (and ``subscription_canceled`` for one
    that has just ended), after the commit."""
    state = applied.state
    if applied.changed:
        tx.after_commit(
            lambda: signals.send(
                signals.subscription_changed, user_id=state.user_id, subscription=state
            )
        )
    if applied.ended_now:
        tx.after_commit(
            lambda: signals.send(
                signals.subscription_canceled, user_id=state.user_id, subscription=state
            )
        )
