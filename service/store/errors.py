"""What a store raises: one family, so the service maps each to its HTTP status once."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store could not be opened or written (bad URL, schema mismatch, lock)."""


class StoreMissing(StoreError):
    """No store where the address points (nothing created there): the message names the
    store and the command that creates it."""


class StaleLayers(StoreError):
    """The layers in force were built by another version of the registry."""


class ConflictError(StoreError):
    """A change whose row no longer holds what the caller last saw (someone else won)."""


class MissingRow(LookupError):
    """A change to a row that does not exist."""


class ResolutionMismatchError(StoreError):
    """The store was built at another H3 resolution than the one configured."""


class SeedSuperseded(StoreError):
    """Tiles seeded from a build that is no longer in force (a newer build landed)."""


class DataChanged(StoreError):
    """The stored tables changed while a build read them in parts (a batch landed, or the
    snapshot the build started from is gone): the build is refused, the one in force kept."""
