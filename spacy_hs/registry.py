"""Registries: names that a config file or a saved model stores, resolved to code when loaded.

* ``heads``: a head's architecture name (``header["head"]["architecture"]`` in a model
  directory) to the class that restores it, ``cls.from_arrays(config, arrays, hs_model)``.
* ``architectures``: spaCy's own ``architectures`` registry (the namespace
  ``spacy.registry.architectures`` reads, reached here without importing spaCy): the functions
  that build a head's thinc ``Model`` (``spacy_hs.LogBilinearContext.v1``, ...), named by the
  ``model`` section of a saved head's config and resolved by ``models``.
* ``settings``: the functions that the ``[word2vec]``, ``[training]`` and ``[head]`` sections of
  a training config name with ``@settings``; confection validates a section against the
  function's type hints (``spacy_hs.training.config``).

All read entry points (``spacy_hs_heads``, ``spacy_architectures``, ``spacy_hs_settings``), so
another package can add a head without spacy-hs importing it, as spaCy's and thinc's registries
do. Old names stay registered beside new ones (``...v1``, ``...v2``): a saved model keeps
loading.
"""

from __future__ import annotations

from typing import Any

import catalogue
import confection

heads = catalogue.create("spacy_hs", "heads", entry_points=True)
settings = catalogue.create("spacy_hs", "settings", entry_points=True)
# Not catalogue.create: spaCy creates this namespace when it is imported, and a Registry object
# is only a view of catalogue's global table, so both see the same functions.
architectures = catalogue.Registry(("spacy", "architectures"), entry_points=True)


class models(confection.registry):
    """confection's resolver over ``architectures``: ``models.resolve({"model": config})``
    builds the thinc Model a config names, checking its settings against the function's type
    hints."""

    architectures = architectures


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


__all__ = ["architectures", "heads", "loadable", "models", "settings"]
