"""A vectorised cache from spaCy orth hashes to integers, for whole arrays of tokens at once.

Preprocessing maps each token's orth to its packed normalised word, the pipeline component
maps it to a model word id. Both see millions of tokens and few distinct orths, so each orth is
resolved once (in Python) and every later occurrence is found by numpy alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MISSING = np.iinfo(np.int64).min  # the value of an orth not in the table
# resolve(new orths, index of each one's first occurrence in the lookup) -> their values
Resolver = Callable[[np.ndarray, np.ndarray], "np.ndarray | list[int]"]


class OrthTable:
    """orth hash (uint64) -> int64 value: open addressing with linear probing in two numpy
    arrays, kept at most a quarter full so that most orths sit in their first slot. About ten
    times faster than ``np.searchsorted`` over sorted keys, and adding keys needs no re-sort.
    Orth hashes are uniformly distributed, so their low bits are the slot. Key 0 marks an empty
    slot (0 is the orth of the empty string, which no token has: it is never stored, and is
    resolved on every lookup)."""

    def __init__(self, capacity: int = 1 << 12) -> None:
        assert capacity >= 1 and not capacity & (capacity - 1), "capacity: a power of 2"
        self.keys = np.zeros(capacity, dtype=np.uint64)
        self.values = np.full(capacity, MISSING, dtype=np.int64)
        self.size = 0

    def lookup(self, orths: np.ndarray, resolve: Resolver) -> np.ndarray:
        """The values of ``orths``; orths not seen before are resolved (each once) and kept."""
        values = self.get(orths)
        missing = np.flatnonzero(values == MISSING)
        if len(missing):
            new, first = np.unique(orths[missing], return_index=True)
            new_values = np.asarray(resolve(new, missing[first]), dtype=np.int64)
            values[missing] = new_values[np.searchsorted(new, orths[missing])]
            self.add(new, new_values)
        return values

    def get(self, orths: np.ndarray) -> np.ndarray:
        """The values of ``orths`` (uint64), MISSING for those not in the table."""
        mask = len(self.keys) - 1
        slots = (orths & np.uint64(mask)).astype(np.intp)
        found = self.keys[slots]
        values = self.values[slots]
        probing = np.flatnonzero((found != orths) & (found != 0))
        slots = slots[probing]
        while len(probing):  # collided: try the next slots until the key or an empty one
            slots = (slots + 1) & mask
            found = self.keys[slots]
            values[probing] = self.values[slots]  # MISSING if empty
            still = (found != orths[probing]) & (found != 0)
            probing, slots = probing[still], slots[still]
        return values

    def add(self, orths: np.ndarray, values: np.ndarray) -> None:
        """Store new (not yet present, distinct) orths with their values."""
        keep = orths != 0
        orths, values = orths[keep], np.asarray(values, dtype=np.int64)[keep]
        if 4 * (self.size + len(orths)) > len(self.keys):
            capacity = len(self.keys)
            while 4 * (self.size + len(orths)) > capacity:
                capacity *= 4
            used = np.flatnonzero(self.keys)
            old_keys, old_values = self.keys[used], self.values[used]
            self.keys = np.zeros(capacity, dtype=np.uint64)
            self.values = np.full(capacity, MISSING, dtype=np.int64)
            self._place(old_keys, old_values)
        self._place(orths, values)
        self.size += len(orths)

    def _place(self, orths: np.ndarray, values: np.ndarray) -> None:
        # All keys at once: each round, of the keys whose current slot is free the first takes
        # it and the others move one slot on. No slot is freed, so every slot between a key's
        # first slot and its place stays taken, as ``get`` needs.
        mask = len(self.keys) - 1
        slots = (orths & np.uint64(mask)).astype(np.intp)
        while len(orths):
            free = np.flatnonzero(self.keys[slots] == 0)
            _, first = np.unique(slots[free], return_index=True)
            taking = free[first]
            self.keys[slots[taking]] = orths[taking]
            self.values[slots[taking]] = values[taking]
            rest = np.ones(len(orths), dtype=bool)
            rest[taking] = False
            orths, values, slots = orths[rest], values[rest], (slots[rest] + 1) & mask
