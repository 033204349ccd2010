"""The markup of the surprisal view: tokens with the DOM contract, header, panels, legends.

The DOM contract (documented in docs/view.md), for styling and for tests:

* every token is an element with class ``hs-token``, in document order, one per spaCy token;
* ``data-rank``: the 1-based rank of the actual word, empty when the token is not scored;
* ``data-logprob``: natural-log P(token | context) (``Token._.hs_logprob``), 4 decimals, or empty;
* ``data-entropy``: the entropy of the whole next-word distribution at the token, in bits
  (3 decimals), empty where there is no prediction;
* ``data-status``: ``scored``, ``no-context``, ``oov`` or ``dropped``.

Each doc is a ``section.hs-doc`` with ``data-perplexity``, ``data-mean-surprisal`` (bits) and
``data-coverage``; its top-k predictions are in a ``script.hs-data`` JSON block (not executed).

Safety: token text is HTML-escaped; the JSON blocks escape ``<``, ``>`` and ``&``, and the
script builds tooltips with ``textContent`` only. A full page (``page=True``) carries a
Content-Security-Policy that allows only its own inline style sheet and script (by hash), so
nothing is fetched from anywhere and injected markup could not run a script.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from spacy.tokens import Doc, Span

from .options import ViewOptions
from .panels import doc_panels, surprisal_legend
from .surprisal import DROPPED, NO_CONTEXT, OOV, SCORED, DocSurprisal

# Why a token has no rank, per status; the script fills in {word} and {vocab}.
REASONS = {
    NO_CONTEXT: (
        "No context: no known word comes before it in its sentence, so the component does not "
        "score it."
    ),
    OOV: (
        "Out of vocabulary: “{word}” is not one of the model's {vocab} words, so it has no rank "
        "or probability."
    ),
    DROPPED: (
        "Dropped by the normaliser, as in the training corpus (punctuation, whitespace or a "
        "stop word): the model never predicts it."
    ),
}
STATUS_LABELS = {
    SCORED: "scored",
    NO_CONTEXT: "no context",
    OOV: "out of vocabulary",
    DROPPED: "dropped",
}


def view_markup(
    docs: Sequence[Doc | Span],
    results: Sequence[DocSurprisal],
    style: str,
    options: ViewOptions,
    *,
    page: bool = False,
    minify: bool = False,
) -> str:
    """The whole view: a page (``page=True``) or a fragment with its own style and script."""
    # The colour scale is one per view; tooltips and headers use each doc's own model.
    vocab_size = results[0].vocab_size if results else 0
    view_id = _view_id(docs, style, options)
    top = options.scale_max(vocab_size)
    css = _css(view_id, options, minify)
    script = _script(minify)
    config = {
        "thresholds": list(options.thresholds),
        "scale": list(options.surprisal_colors),
        "scaleMax": top,
        "statusLabels": STATUS_LABELS,
        "reasons": REASONS,
    }
    parts = [
        f'<div class="hs-view tex2jax_ignore" id="{view_id}" data-mode="{style}">',
        "" if page else f"<style>{css}</style>",
        _toolbar(options, top, view_id),
        '<p class="hs-model">Ranks and entropies are exact, over the whole vocabulary of the '
        "model. Hover or focus a word for its predictions.</p>",
        *(
            _doc_markup(n, doc, result, options)
            for n, (doc, result) in enumerate(zip(docs, results))
        ),
        f'<div class="hs-tooltip" id="{view_id}-tip" role="tooltip" hidden></div>',
        f'<script type="application/json" class="hs-config">{_json(config)}</script>',
        "</div>",
        f"<script>{script}</script>",
    ]
    separator = "" if minify else "\n"
    markup = separator.join(part for part in parts if part)
    if not page:
        return markup
    policy = content_security_policy(css, script)
    return separator.join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            "<title>spacy-hs surprisal view</title>",
            f"<style>{css}</style>",
            "</head>",
            "<body>",
            markup,
            "</body>",
            "</html>",
        ]
    )


def content_security_policy(css: str, script: str) -> str:
    """Nothing may load; only the page's own style sheet and script run, named by hash."""
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src '{_sha256(css)}'",
            f"script-src '{_sha256(script)}'",
            "img-src 'none'",
            "font-src 'none'",
            "connect-src 'none'",
            "media-src 'none'",
            "object-src 'none'",
            "frame-src 'none'",
            "worker-src 'none'",
            "manifest-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _title(doc: Doc | Span, number: int) -> str:
    """``doc.user_data["title"]`` if set (as displaCy reads it), else "Doc 1", "Doc 2"..."""
    title = doc.doc.user_data.get("title") if isinstance(doc, Span) else doc.user_data.get("title")
    return title if isinstance(title, str) and title.strip() else f"Doc {number + 1}"


def _doc_markup(number: int, doc: Doc | Span, result: DocSurprisal, options: ViewOptions) -> str:
    counts = result.counts
    words = len(result) - counts[DROPPED]
    perplexity = result.perplexity
    mean = result.mean_surprisal
    coverage = result.coverage
    stats = [
        f"<span><b>perplexity</b> {_number(perplexity, '.1f')}</span>",
        f"<span><b>mean surprisal</b> {_number(mean, '.2f')} bits</span>",
        f"<span><b>coverage</b> {_number(coverage, '.1%')} ({counts[SCORED]:,} of {words:,} "
        "words scored)</span>",
        f"<span><b>not scored</b> {counts[NO_CONTEXT]:,} no context, {counts[OOV]:,} out of "
        f"vocabulary, {counts[DROPPED]:,} dropped</span>",
        f"<span><b>model</b> {result.vocab_size:,} words, {escape(result.head)} head</span>",
    ]
    attributes = (
        f'data-perplexity="{_attr(perplexity, ".4f")}" data-mean-surprisal="{_attr(mean, ".4f")}" '
        f'data-coverage="{_attr(coverage, ".4f")}"'
    )
    return "".join(
        [
            f'<section class="hs-doc" {attributes}>',
            f'<header class="hs-header"><h2>{escape(_title(doc, number))}</h2>'
            f'<p class="hs-stats">{" ".join(stats)}</p></header>',
            doc_panels(result, options),
            f'<div class="hs-text">{_tokens_markup(doc, result, options)}</div>',
            '<script type="application/json" class="hs-data">',
            f"{_json(_doc_data(result, doc))}</script>",
            "</section>",
        ]
    )


def _tokens_markup(doc: Doc | Span, result: DocSurprisal, options: ViewOptions) -> str:
    parts = []
    bucket = options.bucket
    for token, status, rank, log_prob, entropy in zip(
        doc, result.status, result.ranks, result.log_probs, result.entropies
    ):
        css_class = "hs-token" if rank is None else f"hs-token hs-b{bucket(rank)}"
        parts.append(
            f'<span class="{css_class}" data-rank="{"" if rank is None else rank}" '
            f'data-logprob="{_attr(log_prob, ".4f")}" data-entropy="{_attr(entropy, ".3f")}" '
            f'data-status="{status}">{escape(token.text, quote=False)}</span>'
            f"{escape(token.whitespace_, quote=False)}"
        )
    return "".join(parts)


def _doc_data(result: DocSurprisal, doc: Doc | Span) -> dict[str, Any]:
    """Top-k per token as [word index..., probability...] into a per-doc word list (0: none),
    probabilities rounded as the tooltip shows them, the looked-up word of out-of-vocabulary
    tokens, and the word a scored token was scored as where it differs from its text."""
    index: dict[str, int] = {}
    top = []
    for words, probs in zip(result.top_words, result.top_probs):
        if not words:
            top.append(0)
            continue
        ids = [index.setdefault(word, len(index)) for word in words]
        top.append(ids + [_shown(p) for p in probs])
    oov = {
        str(i): word
        for i, (status, word) in enumerate(zip(result.status, result.normal_forms))
        if status == OOV
    }
    scored_as = {
        str(i): word
        for i, (status, word, text) in enumerate(
            zip(result.status, result.scored_words, (token.text for token in doc))
        )
        if status == SCORED and word is not None and word != text
    }
    return {
        "vocab": result.vocab_size,
        "words": list(index),
        "top": top,
        "oov": oov,
        "scored_as": scored_as,
    }


def _toolbar(options: ViewOptions, top: float, view_id: str) -> str:
    swatches = "".join(
        f'<span class="hs-swatch hs-b{i}">{escape(label)}</span>'
        for i, label in enumerate(options.bucket_labels())
    )
    unscored = "".join(
        f'<span class="hs-swatch" data-status="{status}">{STATUS_LABELS[status]}</span>'
        for status in (NO_CONTEXT, OOV, DROPPED)
    )
    return (
        '<div class="hs-toolbar">'
        '<span class="hs-switch" role="group" aria-label="Colour the words by">Colour by '
        '<button type="button" data-mode="rank">rank</button>'
        '<button type="button" data-mode="surprisal">surprisal</button></span>'
        f'<span class="hs-legend hs-legend-rank">rank of the actual word: {swatches}</span>'
        '<span class="hs-legend hs-legend-surprisal">surprisal, bits: '
        f"{surprisal_legend(options, top, view_id + '-scale')}</span>"
        f'<span class="hs-legend-unscored">not scored: {unscored}</span>'
        "</div>"
    )


def _css(view_id: str, options: ViewOptions, minify: bool) -> str:
    """The static style sheet, then this view's colours (scoped to its id)."""
    colors = "".join(f"--hs-b{i}:{color};" for i, color in enumerate(options.colors))
    buckets = "".join(
        f'.hs-view[data-mode="rank"] .hs-b{i},.hs-swatch.hs-b{i}{{background-color:var(--hs-b{i})}}'
        for i in range(len(options.colors))
    )
    css = _static("view.css") + f"\n#{view_id}{{{colors}}}\n{buckets}\n"
    return _minify_css(css) if minify else css


def _script(minify: bool) -> str:
    script = _static("view.js")
    return _minify_js(script) if minify else script


@cache
def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf8")


def _minify_css(css: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"\s+", " ", css)
    return re.sub(r"\s*([{};,])\s*", r"\1", css).strip()  # not ":", as in "a :focus"


def _minify_js(script: str) -> str:
    # Only indentation and blank or comment-only lines: safe for any script without template
    # literals spanning lines (ours has none).
    lines = (line.strip() for line in script.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


def _view_id(docs: Sequence[Doc | Span], style: str, options: ViewOptions) -> str:
    """An id for the view's scoped styles; the same input gives the same page."""
    digest = hashlib.sha1(repr((style, options)).encode("utf8"))
    for doc in docs:
        digest.update(doc.text.encode("utf8", "surrogatepass"))
        digest.update(b"\0")
    return "hs-" + digest.hexdigest()[:10]


def _json(data: Any) -> str:
    """JSON safe inside a <script> element: no "<", ">" or "&" can end it or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _shown(prob: float) -> float:
    """A probability to the precision the tooltip shows (view.js: formatProb)."""
    return float(f"{prob:.3f}" if prob >= 0.01 else f"{prob:.2g}")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _attr(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _number(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)
