"""The training config: ``[word2vec]``, ``[training]`` and ``[head]``, each resolved through a
function registered in ``spacy_hs.registry.settings`` and validated by confection, as spaCy and
thinc resolve theirs.

A section names its function with ``@settings`` (a section without one gets the default name,
so short user configs and older ones keep working). The function's signature is the one place
where each setting's type, range and default are written: confection checks a section against
it (an unknown key, a wrong type or an out-of-range value is an error naming the section, the
key and what it must be) and fills in the defaults; the saved config (``model.meta["config"]``)
keeps the function names, so the code is found again when it is read.

No ``from __future__ import annotations`` here: confection reads the annotations at run time.
"""

import copy
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Union

import catalogue
import confection
from confection import Config, ConfigValidationError

from .. import registry as spacy_hs_registry
from ..errors import ConfigError, Errors, InputNotFoundError, describe
from ..util import available_cores, check_max_workers
from ..validation import CONTEXT_SIZE_RULE, MAX_TABLE_SIZE, is_context_size


class registry(confection.registry):
    """confection's registry with spacy-hs's ``settings`` namespace."""

    settings = spacy_hs_registry.settings


# -- types that say what a value must be ------------------------------------------------------


def constrained(description: str, accepts: typing.Callable[[Any], bool]) -> type:
    """A type for a config setting: the values ``accepts`` says yes to. confection checks values
    against it through its validator hook; ``description`` is what error messages say the
    value must be."""

    class Constrained:
        @classmethod
        def __get_validators__(cls) -> typing.Iterator[typing.Callable]:
            yield cls.validate

        @classmethod
        def validate(cls, value: Any) -> Any:
            if not accepts(value):
                raise ValueError(description)
            return value

    Constrained.__name__ = Constrained.__qualname__ = description
    Constrained.description = description  # type: ignore[attr-defined]
    return Constrained


def bounded(kind: type | tuple, description: str, **bounds: float) -> type:
    """A ``constrained`` type: a ``kind`` (never a bool) within ``bounds`` (ge, gt, le, lt)."""
    checks = {
        "ge": lambda v, b: v >= b,
        "gt": lambda v, b: v > b,
        "le": lambda v, b: v <= b,
        "lt": lambda v, b: v < b,
    }

    def accepts(value: Any) -> bool:
        return (
            isinstance(value, kind)
            and not isinstance(value, bool)
            and all(checks[name](value, bound) for name, bound in bounds.items())
        )

    return constrained(description, accepts)


Number = (int, float)
PositiveInt = bounded(int, "a positive integer", ge=1)
NonNegativeInt = bounded(int, "an integer >= 0", ge=0)
PositiveFloat = bounded(Number, "a positive number", gt=0)
NonNegativeFloat = bounded(Number, "a number >= 0", ge=0)
Fraction = bounded(Number, "a number in (0, 1)", gt=0, lt=1)
Rate = bounded(Number, "a number in [0, 1)", ge=0, lt=1)
Factor = bounded(Number, "a number in (0, 1]", gt=0, le=1)
VocabLimit = bounded(int, "null or an integer >= 2", ge=2)


def step_size(high: float, *, zero: bool = False) -> type:
    """A learning rate up to ``high``: ten times or more the defaults, whose larger values make
    the weights overflow (checked before training, not found in a NaN after it)."""
    low = "[0" if zero else "(0"
    bounds = {"ge": 0} if zero else {"gt": 0}
    return bounded(
        Number, f"a number in {low}, {high:g}] (larger steps diverge)", le=high, **bounds
    )


# gensim's alpha (default 0.025) and the head's rates (defaults 0.1, 0.0003, 0.05).
Alpha = step_size(0.5)
MinAlpha = step_size(0.5, zero=True)
LearnRate = step_size(2.0)
DenseLearnRate = step_size(0.1)
TableLearnRate = step_size(2.0)
# word2vec vectors have 50 to 1,000 dimensions; each one costs 16 bytes per vocabulary word
# (vectors and inner-node weights, in gensim and in the HS model). Checked against the memory
# once the vocabulary is known (word2vec.py); this cap fails absurd values before the scan.
MAX_VECTOR_SIZE = 10_000
VectorSize = bounded(
    int,
    f"an integer from 1 to {MAX_VECTOR_SIZE:,} (each dimension costs 16 bytes per vocabulary "
    "word of memory, and word2vec vectors have 50 to 1,000)",
    ge=1,
    le=MAX_VECTOR_SIZE,
)
# A model may not read more context words than loading accepts (spacy_hs.validation).
ContextSize = constrained(CONTEXT_SIZE_RULE, is_context_size)


def check_workers(section: str, value: int) -> None:
    """At most ``WORKERS_PER_CORE`` threads per core (``util.max_workers``): more only wait, and
    a huge number never finishes starting its threads."""
    check_max_workers(value, Errors.E163, section=section)


def describe_type(annotation: Any) -> str:
    """What a value of ``annotation`` must be, in words, for error messages."""
    if hasattr(annotation, "description"):
        return annotation.description
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is str:
        return "a string"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        options = [describe_type(a) for a in args if a is not type(None)]
        text = " or ".join(options)
        return text if text.startswith("null") else f"null or {text}"
    return str(annotation)


# -- the sections -----------------------------------------------------------------------------

# The attribute that says which section a settings function reads (``reads_section``).
SECTION_ATTRIBUTE = "config_section"


def reads_section(section: str) -> typing.Callable[[Any], Any]:
    """Mark a settings function (or class) with the config section it reads, so that naming it
    with ``@settings`` in another section is an error (E169), not a crash when its result is
    used. Functions registered by other packages mark themselves the same way."""

    def mark(function: Any) -> Any:
        setattr(function, SECTION_ATTRIBUTE, section)
        return function

    return mark


LOSS_SAMPLE = 2000


@registry.settings("spacy_hs.word2vec.v1")
@reads_section("word2vec")
def word2vec_settings(
    sg: Literal[0, 1] = 0,
    hs: int = 1,
    negative: int = 0,
    vector_size: VectorSize = 100,
    window: ContextSize = 5,
    min_count: PositiveInt = 3,
    max_vocab_size: VocabLimit | None = None,
    max_final_vocab: VocabLimit | None = None,
    sample: NonNegativeFloat = 0.001,
    alpha: Alpha = 0.025,
    min_alpha: MinAlpha = 0.0001,
    cbow_mean: Literal[0, 1] = 1,
    shrink_windows: bool = True,
    epochs: PositiveInt = 10,
    workers: NonNegativeInt = 0,
    seed: NonNegativeInt = 0,
) -> dict[str, Any]:
    """gensim ``Word2Vec`` keyword arguments (configs/default.cfg explains each one).

    hs must be 1 and negative 0: the exact next-word probabilities need the Huffman tree and
    its inner-node weights, and nothing else trained into the vectors. workers = 0 means all
    the cores this process may use.
    """
    if hs != 1:
        raise ConfigError(Errors.E161.format(hs=hs))
    if negative != 0:
        raise ConfigError(Errors.E162.format(negative=negative))
    check_workers("word2vec", workers)
    return {
        "sg": int(sg),
        "hs": 1,
        "negative": 0,
        "vector_size": vector_size,
        "window": window,
        "min_count": min_count,
        "max_vocab_size": max_vocab_size,
        "max_final_vocab": max_final_vocab,
        "sample": float(sample),
        "alpha": float(alpha),
        "min_alpha": float(min_alpha),
        "cbow_mean": int(cbow_mean),
        "shrink_windows": shrink_windows,
        "epochs": epochs,
        "workers": workers or available_cores(),
        "seed": seed,
    }


@registry.settings("spacy_hs.training.v1")
@reads_section("training")
def training_settings(loss_sample: NonNegativeInt = LOSS_SAMPLE) -> dict[str, Any]:
    """How training is measured: ``loss_sample`` examples for the exact per-epoch loss (0
    skips it)."""
    return {"loss_sample": loss_sample}


@registry.settings("spacy_hs.head.v1")
@reads_section("head")
@dataclass(frozen=True)
class HeadSettings:
    """The next-word head (the directional head, spacy_hs/heads/directional.py, or with
    ``ngram_orders`` > 0 the n-gram head, spacy_hs/heads/ngram.py) and how it is trained
    (spacy_hs/training/head.py, whose ``train_head`` docstring explains each setting).

    The one place where each head training setting has its default: the config resolves to
    this, and ``train_head`` hands it to the engine (``head_engine``) unchanged."""

    enabled: bool = True
    context_size: ContextSize = 5
    diagonal: bool = True
    epochs: PositiveInt = 10
    learn_rate: LearnRate = 0.1
    dense_learn_rate: DenseLearnRate = 0.0003
    optimizer: Literal["adagrad", "sgd"] = "adagrad"
    dense_optimizer: Literal["adam", "sgd"] = "adam"
    lr_schedule: Literal["plateau", "stall", "linear"] = "plateau"
    patience: PositiveInt = 2
    lr_decay: Factor = 0.5
    dropout: Rate = 0.5
    l2: NonNegativeFloat = 0.0
    fine_tune_vectors: bool = True
    export_fine_tuned_vectors: bool = False
    eos_token: str | None = None
    seed: NonNegativeInt = 0
    heldout_fraction: Fraction = 0.05
    workers: NonNegativeInt = 0
    ngram_orders: NonNegativeInt = 3
    table_size: PositiveInt = 1 << 23
    table_learn_rate: TableLearnRate = 0.05
    table_l2: NonNegativeFloat = 0.001
    tune_cache: bool = True

    def __post_init__(self) -> None:
        check_workers("head", self.workers)
        check_ngram_settings(self.ngram_orders, self.context_size, self.table_size)


def check_ngram_settings(orders: int, context_size: int, table_size: int) -> None:
    """The n-gram features hash at most the context's words, into at most MAX_TABLE_SIZE."""
    if orders > context_size:
        raise ConfigError(Errors.E413.format(orders=orders, size=context_size))
    if table_size > MAX_TABLE_SIZE:
        raise ConfigError(
            Errors.E403.format(
                option="table_size",
                value=table_size,
                expected=f"at most {MAX_TABLE_SIZE:,} (2**29) values, 2 GiB as float32",
            )
        )


@registry.settings("spacy_hs.recurrent_head.v1")
@reads_section("head")
@dataclass(frozen=True)
class RecurrentHeadSettings:
    """The recurrent next-word head (spacy_hs/heads/recurrent.py) and how it is trained
    (spacy_hs/training/recurrent.py, whose ``train_recurrent_head`` docstring explains each
    setting)."""

    enabled: bool = True
    hidden_width: PositiveInt = 200
    context_size: ContextSize = 64
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 32
    bptt: PositiveInt = 35
    learn_rate: PositiveFloat = 0.002
    grad_clip: PositiveFloat = 5.0
    lr_decay: Factor = 0.5
    patience: PositiveInt = 2
    dropout: Rate = 0.2
    max_minutes: NonNegativeFloat = 0.0
    eos_token: str | None = None
    seed: NonNegativeInt = 0
    heldout_fraction: Fraction = 0.05
    ngram_orders: NonNegativeInt = 3
    table_size: PositiveInt = 1 << 23
    table_learn_rate: PositiveFloat = 0.05
    table_l2: NonNegativeFloat = 0.000001
    tune_cache: bool = True

    def __post_init__(self) -> None:
        check_ngram_settings(self.ngram_orders, self.context_size, self.table_size)


# The name of earlier versions, which covered the n-gram head too: configs that name it keep
# loading.
registry.settings.register("spacy_hs.directional_head.v1", func=HeadSettings)

SECTIONS = {
    "word2vec": "spacy_hs.word2vec.v1",
    "training": "spacy_hs.training.v1",
    "head": "spacy_hs.head.v1",
}
FUNCTION_KEY = "@settings"


# -- reading, completing and checking a config ------------------------------------------------


def default_config() -> Config:
    """The built-in defaults, every setting spelled out (the values of configs/default.cfg)."""
    return load_config(None)


def load_config(
    config: Config | Mapping[str, Any] | str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read, complete and validate a training config; returns it with every default filled in.

    config: a .cfg path, a dict/Config, or None for the defaults.
    overrides: dotted keys as ``spacy train`` takes them on the command line, e.g.
        ``{"word2vec.epochs": 10}``; applied before ``${...}`` variables are interpolated.

    Raises ConfigError (InputNotFoundError for a missing file) naming the bad section or key,
    what it must be, and the fix.
    """
    if config is None:
        user = Config()
    elif isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise InputNotFoundError(Errors.E156.format(path=path))
        try:
            user = Config().from_disk(path, interpolate=False)
        except Exception as err:  # configparser and confection raise many types
            raise ConfigError(Errors.E157.format(path=path, reason=describe(err))) from None
    else:
        user = Config(copy.deepcopy(dict(config)))
    merged = Config({section: {FUNCTION_KEY: name} for section, name in SECTIONS.items()})
    for section, values in user.items():
        _check_section(section, values)
        merged[section].update(values)
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        _check_section(section, {})
        merged[section][name] = value
    try:
        merged = merged.interpolate()
    except Exception as err:  # an unresolvable ${section.key}
        raise ConfigError(Errors.E157.format(path=config, reason=describe(err))) from None
    for section in SECTIONS:
        _check_function(section, merged[section].get(FUNCTION_KEY))
    try:
        filled = registry.fill(merged, validate=True)
    except ConfigValidationError as err:
        raise ConfigError(_validation_message(err, merged)) from None
    except catalogue.RegistryError as err:
        raise ConfigError(Errors.E157.format(path=config, reason=describe(err))) from None
    resolve_config(filled)  # runs the functions' own checks (hs, negative) now, not later
    return filled


def resolve_config(config: Config) -> dict[str, Any]:
    """The sections of a loaded config resolved: ``word2vec`` (gensim keyword arguments),
    ``training`` (a dict) and ``head`` (``HeadSettings`` or ``RecurrentHeadSettings``)."""
    return registry.resolve(config, validate=False)


def head_settings(settings: HeadSettings | None = None, **options: Any) -> HeadSettings:
    """``settings`` (default: the defaults) with ``options`` replacing some, validated by the
    config's resolver as a ``[head]`` section is."""
    values = {**(asdict(settings) if settings is not None else {}), **options}
    return resolve_config(load_config({"head": values}))["head"]


def word2vec_params(section: Mapping[str, Any]) -> dict[str, Any]:
    """gensim ``Word2Vec`` keyword arguments from a ``[word2vec]`` section, validated and
    completed (``workers = 0`` resolved to the number of cores)."""
    return resolve_config(load_config({"word2vec": dict(section)}))["word2vec"]


def settings_names(section: str) -> list[str]:
    """The settings of a section, as its registered function declares them."""
    function = registry.settings.get(SECTIONS[section])
    return list(inspect.signature(function).parameters)


def _check_section(section: str, values: Any) -> None:
    if section not in SECTIONS or not isinstance(values, Mapping):
        raise ConfigError(Errors.E158.format(section=section, valid=", ".join(SECTIONS)))


def _check_function(section: str, name: Any) -> None:
    """E169 unless ``name`` is a registered settings function that reads ``section``."""
    functions = spacy_hs_registry.loadable(registry.settings)
    function = functions.get(name) if isinstance(name, str) else None
    found = getattr(function, SECTION_ATTRIBUTE, None)
    if found == section:
        return
    if function is None:
        problem = "which is not registered in spacy-hs's settings registry"
    elif found is None:
        problem = "which does not say which section it reads"
    else:
        problem = f"which reads the [{found}] section"
    valid = [n for n, f in functions.items() if getattr(f, SECTION_ATTRIBUTE, None) == section]
    raise ConfigError(
        Errors.E169.format(section=section, name=name, problem=problem, valid=", ".join(valid))
    )


def _validation_message(err: ConfigValidationError, config: Config) -> str:
    """The first problem confection found, as one message naming section, key and type."""
    problem = err.errors[0]
    loc = [str(part) for part in problem.get("loc", [])]
    section, key = (loc + ["", ""])[:2]
    if section not in SECTIONS:
        return Errors.E157.format(path="the config", reason=problem.get("msg"))
    function = registry.settings.get(config[section].get(FUNCTION_KEY, SECTIONS[section]))
    parameters = inspect.signature(function).parameters
    if key not in parameters:
        return Errors.E159.format(section=section, key=key, valid=", ".join(sorted(parameters)))
    expected = describe_type(typing.get_type_hints(function).get(key, parameters[key].annotation))
    return Errors.E160.format(
        section=section, key=key, expected=expected, value=config[section].get(key)
    )
