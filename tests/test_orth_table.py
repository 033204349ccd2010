"""spacy_hs.orth_table: the orth -> value cache behind preprocessing and the component."""

from __future__ import annotations

import numpy as np

from spacy_hs.orth_table import MISSING, OrthTable


def test_orth_table_maps_batches_of_orths() -> None:
    """The hash table: long collision chains, growth, absent keys and
    orth 0 (which marks empty slots)."""
    rng = np.random.default_rng(0)
    table = OrthTable(capacity=16)
    stored: dict[int, int] = {}
    for _ in range(5):
        orths = rng.integers(1, 2**64 - 1, 400, dtype=np.uint64, endpoint=True)
        orths[:150] &= ~np.uint64(0xFFFF)  # the same low bits: they all want the same slot
        orths = np.unique(orths)
        new = np.array([orth not in stored for orth in orths.tolist()])
        ids = rng.integers(-1, 1000, int(new.sum())).astype(np.int32)
        table.add(orths[new], ids)
        stored.update(zip(orths[new].tolist(), ids.tolist()))
        absent = rng.integers(1, 2**63, 300, dtype=np.uint64)
        queries = np.concatenate([orths, absent, np.zeros(2, dtype=np.uint64)])
        expected = [stored.get(orth, MISSING) for orth in queries.tolist()]
        assert table.get(queries).tolist() == expected
    assert len(table.keys) >= 4 * len(stored)


def test_lookup_resolves_each_orth_once() -> None:
    resolved: list[int] = []

    def resolve(orths: np.ndarray, first: np.ndarray) -> list[int]:
        resolved.extend(orths.tolist())
        return [orth % 1009 for orth in orths.tolist()]

    table = OrthTable(capacity=16)  # 16 slots: collisions and growth are certain
    rng = np.random.default_rng(0)
    orths = rng.integers(1, 2**63, size=200, dtype=np.uint64)
    orths[1::2] = orths[::2] + np.uint64(16)  # same low 4 bits as a neighbour
    for _ in range(3):
        batch = rng.choice(orths, size=500)
        assert (table.lookup(batch, resolve) == batch % np.uint64(1009)).all()
    assert len(resolved) == len(set(resolved))  # each orth resolved once
    assert len(table.keys) >= 4 * table.size == 4 * len(set(resolved))
