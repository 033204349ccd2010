"""Token normalisation shared by corpus preprocessing and the pipeline component.

The same settings must apply to the training corpus and to the text the component sees, so they
are stored with the token file and the model, and rebuilt here from that dict. Every decision
depends only on the lexeme (text, ``is_punct``, ``like_url``...), so results are cached per
lexeme id.

Numbers: by default (``numbers_rule="digits"``) a number is a token written with digits and no
letter ("1984", "3.5", "1,000", "10:30"); number words ("one", "first", "hundred") are words, as
Penn Treebank and KenLM keep them. ``numbers_rule="like_num"`` is the earlier rule of spacy-hs:
spaCy's ``like_num``, which also takes number words. Settings recorded without a
``numbers_rule`` (token files and models made before it existed) read as "like_num", so such a
model normalises new text as its corpus was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError, Errors

if TYPE_CHECKING:  # spaCy loads only when tokens are normalised: model loading checks settings
    from spacy.lexeme import Lexeme
    from spacy.tokens import Token

Action = Literal["keep", "drop", "placeholder"]
ACTIONS = ("keep", "drop", "placeholder")
NumbersRule = Literal["digits", "like_num"]
NUMBERS_RULES = ("digits", "like_num")
# Settings recorded before ``numbers_rule`` existed hold these keys, and had this rule.
LEGACY_KEYS = ("lowercase", "punct", "numbers", "urls", "stopwords")
LEGACY_NUMBERS_RULE = "like_num"
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[^\W\d_]")
NUM, URL, PUNCT = "<num>", "<url>", "<punct>"
_UNSEEN = object()


@dataclass
class NormalizerSettings:
    """How tokens become corpus words.

    lowercase: lowercase every token (gensim tutorials' default, and ours).
    punct / numbers / urls: "keep" the token, "drop" it, or replace it with a placeholder
        (``<punct>``, ``<num>``, ``<url>``).
    stopwords: "keep" or "drop" spaCy's stop words. Keep them for next-word prediction.
    numbers_rule: which tokens are numbers: "digits" (written with digits and no letter:
        "1984", "3.5", "1,000"; "first" and "two" are words) or "like_num" (spaCy's
        ``like_num``, number words included: the earlier rule).
    """

    lowercase: bool = True
    punct: Action = "drop"
    numbers: Action = "placeholder"
    urls: Action = "placeholder"
    stopwords: Literal["keep", "drop"] = "keep"
    numbers_rule: NumbersRule = "digits"

    def __post_init__(self) -> None:
        if not isinstance(self.lowercase, bool):  # "no" would read as True
            raise ConfigError(
                Errors.E112.format(name="lowercase", value=self.lowercase, choices="True, False")
            )
        for name in ("punct", "numbers", "urls"):
            if getattr(self, name) not in ACTIONS:
                raise ConfigError(
                    Errors.E112.format(
                        name=name, value=getattr(self, name), choices=", ".join(ACTIONS)
                    )
                )
        if self.stopwords not in ("keep", "drop"):
            raise ConfigError(
                Errors.E112.format(name="stopwords", value=self.stopwords, choices="keep, drop")
            )
        if self.numbers_rule not in NUMBERS_RULES:
            raise ConfigError(
                Errors.E112.format(
                    name="numbers_rule", value=self.numbers_rule, choices=", ".join(NUMBERS_RULES)
                )
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> NormalizerSettings:
        """Rebuild from ``to_dict`` output; unknown keys (from other spacy-hs versions) are
        ignored, missing ones take the defaults. Settings recorded before ``numbers_rule``
        existed (every other setting there, that one missing) keep "like_num"."""
        if data is not None and not isinstance(data, dict):
            raise ConfigError(
                Errors.E112.format(name="normalizer", value=data, choices="a dict of settings")
            )
        names = {f.name for f in fields(cls)}
        settings = {k: v for k, v in (data or {}).items() if k in names}
        if "numbers_rule" not in settings and all(key in settings for key in LEGACY_KEYS):
            settings["numbers_rule"] = LEGACY_NUMBERS_RULE
        return cls(**settings)


class TokenNormalizer:
    """Maps a spaCy token or lexeme to its corpus word, or None if the token is dropped."""

    def __init__(self, settings: NormalizerSettings | dict[str, Any] | None = None):
        if not isinstance(settings, NormalizerSettings):
            settings = NormalizerSettings.from_dict(settings)
        self.settings = settings
        self._cache: dict[int, str | None] = {}

    def norm(self, token: Token | Lexeme) -> str | None:
        """The corpus word for ``token``, or None if it is dropped."""
        value = self._cache.get(token.orth, _UNSEEN)
        if value is _UNSEEN:
            lex = getattr(token, "lex", token)  # a Token's lexeme; a Lexeme is its own
            value = self._cache[token.orth] = self._norm_lexeme(lex)
        return value  # type: ignore[return-value]

    def words(self, tokens: Iterable[Token | Lexeme]) -> list[str]:
        """The corpus words of a token sequence, dropped tokens left out."""
        norm = self.norm
        return [w for w in map(norm, tokens) if w is not None]

    def _norm_lexeme(self, lex: Lexeme) -> str | None:
        s = self.settings
        if lex.is_space or lex.orth == 0:  # orth 0: the empty string
            return None
        if lex.like_url:
            return _apply(s.urls, URL, lex, s.lowercase)
        if _is_number(lex, s.numbers_rule):
            return _apply(s.numbers, NUM, lex, s.lowercase)
        if lex.is_punct:
            return _apply(s.punct, PUNCT, lex, s.lowercase)
        if s.stopwords == "drop" and lex.is_stop:
            return None
        return _text(lex, s.lowercase)


def _is_number(lex: Lexeme, rule: str) -> bool:
    if rule == "like_num":
        return bool(lex.like_num)
    text = lex.orth_
    return _DIGIT.search(text) is not None and _LETTER.search(text) is None


def _text(lex: Lexeme, lowercase: bool) -> str:
    # Corpus files separate tokens by spaces, so a token may not contain whitespace. Every
    # whitespace character but " " is unprintable, so this test is exact and runs in C.
    text = lex.lower_ if lowercase else lex.orth_
    return "_".join(text.split()) if " " in text or not text.isprintable() else text


def _apply(action: str, placeholder: str, lex: Lexeme, lowercase: bool) -> str | None:
    if action == "drop":
        return None
    if action == "placeholder":
        return placeholder
    return _text(lex, lowercase)
