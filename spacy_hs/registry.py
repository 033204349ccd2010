"""Registries: names that a config file or a saved model stores, resolved to code when loaded.

* ``heads``: a head's architecture name (``header["head"]["architecture"]`` in a model
  directory) to the class that restores it, ``cls.from_arrays(config, arrays, hs_model)``.
* ``settings``: the functions that the ``[word2vec]``, ``[training]`` and ``[head]`` sections of
  a training config name with ``@settings``; confection validates a section against the
  function's type hints (``spacy_hs.training.config``).

Both also read entry points (``spacy_hs_heads``, ``spacy_hs_settings``), so another package can
add a head without spacy-hs importing it, as spaCy's and thinc's registries do. Old names stay
registered beside new ones (``...v1``, ``...v2``): a saved model keeps loading.
"""

from __future__ import annotations

from typing import Any

import catalogue

heads = catalogue.create("spacy_hs", "heads", entry_points=True)
settings = catalogue.create("spacy_hs", "settings", entry_points=True)


def loadable(registry: catalogue.Registry) -> dict[str, Any]:
    """Everything ``registry`` knows, by name, as ``get_all`` gives it, except that an entry
    point that cannot be loaded (another package's, whose module is gone or broken) is left
    out instead of failing the whole listing: error messages list the valid names with this."""
    found = {}
    for entry_point in registry._get_entry_points():
        try:
            found[entry_point.name] = entry_point.load()
        except Exception:  # any import error of someone else's module
            continue
    for keys, value in catalogue.REGISTRY.copy().items():
        if tuple(keys[:-1]) == tuple(registry.namespace):
            found[keys[-1]] = value
    return found


__all__ = ["heads", "loadable", "settings"]
