"""The destructive-action budget: how many tokens each scope spent in a sliding window.

A token stands for one destructive action. ``Guards`` takes one from the cluster scope and one
from the target's namespace scope before a destructive action runs, and gives it back when the
action changed nothing. The state sits behind ``BudgetStore`` so that several replicas can later
share one budget; ``InMemoryBudgetStore`` keeps it in the process.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from responder.guard.settings import BudgetSettings

CLUSTER_SCOPE = "cluster"


def namespace_scope(namespace: str) -> str:
    return f"namespace/{namespace}"


@dataclass(frozen=True)
class BudgetScope:
    """One budget: at most ``limit`` tokens in any ``window_s`` seconds under ``key``."""

    key: str
    limit: int
    window_s: float


@dataclass(frozen=True)
class BudgetGrant:
    """Tokens taken from every scope. ``token`` is None when the check consumed nothing."""

    token: str | None


@dataclass(frozen=True)
class BudgetExhausted:
    """The first scope with no token left, and when its oldest token leaves the window."""

    scope: BudgetScope
    used: int
    retry_after_s: float


class BudgetStore(Protocol):
    """Budget state that ``Guards`` reads and changes.

    ``now_s`` is a monotonic time in seconds. A store shared by several replicas cannot compare
    the processes' monotonic clocks, so it would use its own clock and ignore ``now_s``.
    NOTE: the methods are synchronous because ``Guards.settle`` is. A store that talks to a
    server needs async methods or a local queue of releases.
    """

    def acquire(
        self, scopes: Sequence[BudgetScope], now_s: float, *, consume: bool
    ) -> BudgetGrant | BudgetExhausted:
        """Take one token from every scope, all or none, or report the first exhausted scope.

        With ``consume`` False, only check that every scope has a token left.
        """
        ...

    def release(self, token: str) -> bool:
        """Give a token back to every scope it was taken from. Returns False for an unknown
        or already expired token."""
        ...


class InMemoryBudgetStore:
    """Budget state in this process: per scope, the times its live tokens were taken.

    Memory is bounded by the limits: a scope contains at most ``limit`` tokens, tokens leave when
    their window ends, and a scope with no tokens is dropped.
    """

    def __init__(self) -> None:
        # Per scope key: (taken at, token id), oldest first.
        self._taken: dict[str, deque[tuple[float, str]]] = {}
        self._windows: dict[str, float] = {}
        self._ids = itertools.count(1)

    def acquire(
        self, scopes: Sequence[BudgetScope], now_s: float, *, consume: bool
    ) -> BudgetGrant | BudgetExhausted:
        self._expire(now_s)
        for scope in scopes:
            tokens = self._taken.get(scope.key, deque())
            if len(tokens) >= scope.limit:
                retry_after = tokens[0][0] + scope.window_s - now_s if tokens else scope.window_s
                return BudgetExhausted(scope, len(tokens), max(retry_after, 0.0))
        if not consume:
            return BudgetGrant(None)
        token = str(next(self._ids))
        for scope in scopes:
            self._windows[scope.key] = scope.window_s
            self._taken.setdefault(scope.key, deque()).append((now_s, token))
        return BudgetGrant(token)

    def release(self, token: str) -> bool:
        found = False
        for key in list(self._taken):
            tokens = self._taken[key]
            remaining = deque(entry for entry in tokens if entry[1] != token)
            if len(remaining) != len(tokens):
                found = True
            if remaining:
                self._taken[key] = remaining
            else:
                del self._taken[key]
                self._windows.pop(key, None)
        return found

    def used(self, key: str, now_s: float) -> int:
        """Return the tokens taken under ``key`` that are still inside their window."""
        self._expire(now_s)
        return len(self._taken.get(key, ()))

    def scope_count(self) -> int:
        return len(self._taken)

    def _expire(self, now_s: float) -> None:
        # Guards puts every token in the cluster scope, so the scopes left after this pass number
        # at most the cluster limit plus one.
        for key in list(self._taken):
            tokens = self._taken[key]
            window_s = self._windows.get(key, 0.0)
            while tokens and now_s - tokens[0][0] >= window_s:
                tokens.popleft()
            if not tokens:
                del self._taken[key]
                self._windows.pop(key, None)


@dataclass(frozen=True)
class _Reservation:
    # The holder is kept so that its id() cannot be reused until the reservation is settled.
    holder: object
    token: str
    taken_at_s: float


class Budget:
    """The cluster and namespace budgets of ``BudgetSettings``, and the tokens not yet settled.

    A token is reserved for one action of one holder (the action's context) and settled once the
    action has ended: kept when it changed something, given back otherwise.
    """

    def __init__(self, settings: BudgetSettings, store: BudgetStore) -> None:
        self.settings = settings
        self.store = store
        self._reservations: dict[tuple[int, str], _Reservation] = {}

    def take(
        self, holder: object, action: str, namespace: str | None, now_s: float, *, consume: bool
    ) -> BudgetExhausted | None:
        """Take a token for ``action``, or return the exhausted scope. With ``consume`` False,
        only check that a token is left."""
        self._forget_old_reservations(now_s)
        settings = self.settings
        scopes = [BudgetScope(CLUSTER_SCOPE, settings.cluster_max, settings.window_s)]
        if namespace is not None:
            key = namespace_scope(namespace)
            scopes.append(BudgetScope(key, settings.namespace_max, settings.window_s))
        decision = self.store.acquire(scopes, now_s, consume=consume)
        if isinstance(decision, BudgetExhausted):
            return decision
        if decision.token is not None:
            reservation = _Reservation(holder, decision.token, now_s)
            self._reservations[(id(holder), action)] = reservation
        return None

    def settle(self, holder: object, action: str, *, keep: bool) -> None:
        """Keep the token taken for ``action`` of ``holder``, or give it back."""
        reservation = self._reservations.pop((id(holder), action), None)
        if reservation is None or reservation.holder is not holder:
            return
        if not keep:
            self.store.release(reservation.token)

    def pending(self) -> int:
        """Return the number of tokens taken and not yet settled."""
        return len(self._reservations)

    def _forget_old_reservations(self, now_s: float) -> None:
        # A reservation never settled (its caller raised) would otherwise keep its holder alive.
        # Once the window has passed, its token has expired and there is nothing to give back.
        for key, reservation in list(self._reservations.items()):
            if now_s - reservation.taken_at_s >= self.settings.window_s:
                del self._reservations[key]
