"""A surprisal view of Docs in the browser, shaped like ``spacy.displacy``: ``render``, ``serve``.

Each token is coloured by the exact rank of the actual word in the ``hs_predictor``'s next-word
distribution (GLTR's buckets: top 10, 100, 1000, beyond) or by its surprisal in bits, with a
tooltip of the top-k predictions, the word's rank, probability and surprisal, and the entropy
of the whole distribution. The numbers come from ``spacy_hs.view.surprisal``; the markup and its DOM
contract from ``page``; the page is self-contained (inline CSS, JS and SVG, no request of any
kind, a Content-Security-Policy) and works opened from disk.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from spacy.tokens import Doc, Span
from spacy.util import is_in_jupyter
from wasabi import msg

from ..errors import Errors, Warnings, WrongTypeError
from .options import STYLES, ViewOptions, check_style
from .page import view_markup
from .server import DEFAULT_HOST, DEFAULT_PORT, ViewServer
from .surprisal import DocSurprisal, doc_surprisals

__all__ = [
    "STYLES",
    "ViewOptions",
    "ViewServer",
    "render",
    "serve",
]


def render(
    docs: Doc | Span | Iterable[Doc | Span],
    *,
    style: str = "rank",
    page: bool = False,
    minify: bool = False,
    jupyter: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> str | None:
    """The surprisal view of one or more Docs (or Spans) processed by a pipeline with
    ``hs_predictor``, as HTML.

    style: what the colours show first: "rank" (the rank bucket of the actual word) or
        "surprisal" (its surprisal in bits, on a continuous scale). The page's switch changes
        it, without a server.
    page: a whole HTML page (with its Content-Security-Policy), else a fragment to embed (its
        styles are scoped to the view).
    minify: drop the markup's, style sheet's and script's layout whitespace.
    jupyter: display the view in the notebook (and return None); None: if running in one.
    options: ``thresholds`` (10, 100, 1000), ``colors`` (one hex colour per bucket: GLTR's
        green, yellow, red, violet), ``surprisal_colors`` (the scale's hex colours),
        ``surprisal_max`` (top of the scale in bits; default log2 of the vocabulary size) and
        ``top_k`` (predictions shown on hover, 5). See ``ViewOptions``.
    """
    style = check_style(style)
    view_options = ViewOptions.from_dict(options)
    if isinstance(docs, (str, bytes, bytearray)) or not isinstance(docs, (Doc, Span, Iterable)):
        raise WrongTypeError(Errors.E703.format(type=type(docs).__name__))
    items = [docs] if isinstance(docs, (Doc, Span)) else list(docs)
    bad = [item for item in items if not isinstance(item, (Doc, Span))]
    if bad:
        raise WrongTypeError(Errors.E703.format(type=type(bad[0]).__name__))
    parents = [item.doc if isinstance(item, Span) else item for item in items]
    results = _slices(items, doc_surprisals(parents, top_k=view_options.top_k))
    html = view_markup(items, results, style, view_options, page=page, minify=minify)
    if jupyter or (jupyter is None and is_in_jupyter()):
        from IPython.display import HTML, display

        display(HTML(html))
        return None
    return html


def serve(
    docs: Doc | Span | Iterable[Doc | Span],
    *,
    style: str = "rank",
    page: bool = True,
    minify: bool = False,
    options: Mapping[str, Any] | None = None,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    auto_select_port: bool = False,
    allowed_hosts: Iterable[str] = (),
) -> None:
    """Serve the view of ``docs`` at http://host:port/ until interrupted (Ctrl-C), as
    ``displacy.serve`` does, but on the loopback address by default: pass host="0.0.0.0" to
    let other machines see your text. port 0 picks a free port. The page is served only to
    requests for the server's own names (localhost, 127.0.0.1, ::1, ``host``), against DNS
    rebinding: add the names you reach it by (e.g. "myhost.lan") with ``allowed_hosts``. For a
    server you stop from code, use ``ViewServer(render(docs, page=True), port=...)``
    (``.start()``, ``.stop()``; it also takes ``timeout`` and ``max_connections``).
    """
    if is_in_jupyter():
        warnings.warn(Warnings.W700, stacklevel=2)
    html = render(docs, style=style, page=page, minify=minify, jupyter=False, options=options)
    assert html is not None
    server = ViewServer(
        html,
        host=host,
        port=port,
        auto_select_port=auto_select_port,
        allowed_hosts=allowed_hosts,
    )
    msg.info(f"Serving the surprisal view on {server.url} (press Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        msg.info(f"Stopped serving on port {server.port}.")
    finally:
        server.stop()


def _slices(items: list[Doc | Span], results: list[DocSurprisal]) -> list[DocSurprisal]:
    return [
        result.slice(item.start, item.end) if isinstance(item, Span) else result
        for item, result in zip(items, results)
    ]
