"""The servers perf/compare.py measures, each behind the `Peer` interface of `base.py`.

`PEERS` maps a name to a factory taking compare.py's options; Cyrus is listed when its module
(`cyrus.py`, written separately) is present.
"""

from __future__ import annotations

import importlib

from .base import Peer, PeerUnavailable

__all__ = ["Peer", "PeerUnavailable", "make", "known"]

ORDER = ["skua", "dovecot", "cyrus"]


def known() -> list[str]:
    """Peer names in the order compare.py runs them."""
    return list(ORDER)


def make(name: str, options: dict) -> Peer:
    """A new peer `name`, configured from compare.py's `options`.

    Raises PeerUnavailable if the name is unknown or its module is missing.
    """
    if name == "skua":
        from .skua import Skua

        return Skua(
            shards=options.get("shards"), lmtp_connections=options.get("lmtp_connections", 0)
        )
    if name == "dovecot":
        from .dovecot import Dovecot

        return Dovecot(
            hibernate=options.get("dovecot_hibernate", False),
            max_connections=options.get("max_connections", 1000),
        )
    if name == "cyrus":
        try:
            module = importlib.import_module(".cyrus", __package__)
        except ModuleNotFoundError as e:
            raise PeerUnavailable(f"cyrus: perf/peers/cyrus.py is not there ({e})") from e
        # Duck-typed: the module may import `Peer` under another module path.
        classes = [
            c for c in vars(module).values()
            if isinstance(c, type) and getattr(c, "name", None) == "cyrus"
            and all(callable(getattr(c, m, None)) for m in ("install", "start", "stop"))
        ]
        if not classes:
            raise PeerUnavailable("cyrus: perf/peers/cyrus.py defines no Peer subclass")
        return classes[0]()
    raise PeerUnavailable(f"unknown peer {name!r}; known: {', '.join(ORDER)}")
