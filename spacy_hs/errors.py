"""Every error and warning spacy-hs raises on purpose, in one place.

Each message says what went wrong and how to fix it, and carries its code: ``Errors.E001``
reads ``"[E001] ..."``, so users can search for it (spaCy's ``ErrorsWithCodes``). All errors
derive from ``SpacyHSError``; the CLI catches that one class and prints the message. Numbering:
E0xx model and queries, E1xx corpus, preprocessing and training, E2xx evaluation, E3xx the
pipeline component and packaging, E4xx heads, E5xx config, E8xx Dask, E9xx scoring corpora.
"""

from __future__ import annotations

# The exit code of a command stopped by Ctrl-C, as the shell gives it (128 + SIGINT).
EXIT_INTERRUPTED = 130

class ErrorsWithCodes(type):
    """Prefix every message attribute with its code: ``Errors.E001 == "[E001] ..."``."""

    def __getattribute__(cls, code: str) -> str:
        message = super().__getattribute__(code)
        if code.startswith("_") or not isinstance(message, str):
            return message
        return f"[{code}] {message}"


class SpacyHSError(Exception):
    """Base class of every error spacy-hs raises on purpose (bad input, settings or files)."""


class ConfigError(SpacyHSError, ValueError):
    """A setting, option or config value is not valid."""


class InputError(SpacyHSError, ValueError):
    """An input (raw text, token file, evaluation data) is missing, unreadable or unusable."""


class InputNotFoundError(InputError, FileNotFoundError):
    """An input file or directory does not exist."""


class WrongTypeError(SpacyHSError, TypeError):
    """An object of the wrong type was passed (e.g. not a gensim Word2Vec, not an HSModel)."""


class InputIsDirectoryError(InputError, IsADirectoryError):
    """A directory was given where an input file is needed."""


class OutputError(SpacyHSError, ValueError):
    """An output cannot be written where it was asked for (it would replace something else)."""


class OutputExistsError(OutputError, FileExistsError):
    """An output path holds something spacy-hs did not write, and is left alone."""


class ModelFileError(SpacyHSError, ValueError):
    """A model file or byte string is corrupt, inconsistent or of another format."""


class MissingModelFileError(ModelFileError, FileNotFoundError):
    """A model file or directory does not exist."""


class PipelineError(SpacyHSError, ValueError):
    """A spaCy pipeline or package cannot be built, loaded or used as asked."""


class ServeError(SpacyHSError, OSError):
    """A page cannot be served (the port is taken, the host is not valid)."""
class WordIdError(SpacyHSError, IndexError, KeyError):
    """A word id is outside the model's vocabulary: an IndexError (an id is an index), and a
    KeyError, as for an unknown word (``UnknownWordError``)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class UnknownWordError(SpacyHSError, KeyError):
    """A word is not in the model's vocabulary."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


def describe(err: BaseException) -> str:
    """``"TypeName: message"`` of an exception, for messages that quote a lower-level error."""
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


class Errors(metaclass=ErrorsWithCodes):
    # Building an HSModel from gensim
    E001 = (
        "This gensim model was not trained with hierarchical softmax "
        "(hs={hs}, negative={negative}). spacy-hs needs the Huffman tree and its inner-node "
        "weights: train with Word2Vec(..., hs=1, negative=0)."
    )
    E002 = (
        "This gensim model has no inner-node weights (syn1): it was built but never trained, or "
        "was loaded from KeyedVectors only. Train it with hs=1, negative=0 and pass the full "
        "Word2Vec model, not model.wv."
    )
    E003 = (
        "Expected a gensim Word2Vec model, got {type}. Pass a trained gensim.models.Word2Vec "
        "(FastText and Doc2Vec are not supported)."
    )
    E004 = "The vocabulary has {n} word(s); an HS model needs at least 2. Train on a larger corpus."
    E005 = "The vocabulary has duplicate words; each word must appear once in `words`."
    E006 = "{name} has shape {shape}, expected {expected} (vocabulary size, vector size)."
    E007 = "The tree has {tree} words but the vocabulary {n}; pass the tree trained with them."
    E008 = "context_ids must be a (B, K) matrix of word ids, got shape {shape}."
    E009 = "Expected an HSModel, got {type}. Load one with HSModel.from_disk(path)."
    # The Huffman tree (tree.py): what is wrong with its paths; E013 says what to do.
    E030 = "{points} point lists but {codes} code lists"
    E031 = "{name} must be one-dimensional, got shape {shape}"
    E032 = "{name} must hold integers, got dtype {dtype}"
    E033 = "{name} has values outside [{low}, {high}]"
    E034 = "a tree needs at least 2 words, got {n}"
    E035 = "path_nodes and path_codes differ in length"
    E036 = "word paths are empty or their offsets do not match the path arrays"
    E037 = "path node ids must lie in [0, {n_inner}) and codes in {{0, 1}}"
    E038 = "word paths do not share one root"
    E039 = "word paths do not form a full binary tree"
    # Model files
    E010 = (
        "Missing model file {path}. Point to a directory written by HSModel.to_disk or "
        "`spacy-hs train`."
    )
    E011 = (
        "Cannot read model file {path}: {reason}. The file is truncated or corrupted; "
        "re-create the model with `spacy-hs train` or HSModel.to_disk."
    )
    E012 = (
        "Model file {path} has format {found!r}, but this version of spacy-hs reads "
        "{expected!r}. Re-create the model with this version, or install the spacy-hs version "
        "that wrote it."
    )
    E013 = "Model directory {path} is inconsistent: {reason}. Re-create it with `spacy-hs train`."
    E014 = "{path} is not an spacy-hs model directory (no meta.json). {hint}"
    E016 = (
        "{path} exists and is not an spacy-hs model directory; refusing to overwrite it. "
        "Choose a new or empty output directory."
    )
    E017 = (
        "Cannot write {path}: {reason}. Check that the directory exists and is writable (not a "
        "file, not read-only), or choose another output path."
    )
    E018 = (
        "Cannot put the output at {path}: something of another kind (a file where a directory "
        "goes, or the reverse) is in the way. Move it away or choose another output path."
    )
    E019 = (
        "Cannot write {path}: the file system is full ({reason}; {free:,} bytes free). Nothing "
        "was written and earlier outputs are untouched. Free some space there, or choose an "
        "output path on another file system."
    )
    E015 = (
        "Model data is not an spacy-hs byte string: {reason}. Pass bytes from HSModel.to_bytes()."
    )
    # Model files: what is read, and what it may hold (validation.py, util.read_regular_file)
    E060 = (
        "Model file {path} is {kind}, not a regular file. spacy-hs reads only regular files, "
        "so that a FIFO, a device such as /dev/urandom or a directory in place of a model file "
        "cannot make loading hang or fill memory. Put back the file written by "
        "HSModel.to_disk, or re-create the model with `spacy-hs train`."
    )
    E061 = (
        "Model file {path} is {size:,} bytes, more than the {limit:,} bytes {why}. It does not "
        "belong to this model, or meta.json is wrong: re-create the model with `spacy-hs train` "
        "or HSModel.to_disk."
    )
    E062 = (
        "Model file {path}: format_version is {value!r} ({type}), not the integer "
        "{expected}. Write it as a JSON number ({expected}, not \"{expected}\"), or re-create "
        "the model with `spacy-hs train` or HSModel.to_disk."
    )
    E063 = (
        "Model file {path}: {key} = {value} is not valid: it must be {expected}. Fix that "
        "value, or re-create the model with `spacy-hs train` or HSModel.to_disk."
    )
    E064 = "HSModel setting {key} = {value} is not valid: it must be {expected}."
    E065 = (
        "Model file {path} holds {count:,} NaN or infinite value(s), the first at flat index "
        "{index:,}: the file is corrupt or the training that wrote it diverged. Re-create the "
        "model (if training diverged, with a lower learning rate, e.g. `--word2vec.alpha`)."
    )
    E066 = (
        "The gensim model's {name} hold NaN or infinite values: its training diverged. "
        "Retrain it with a lower learning rate (alpha) or fewer epochs."
    )
    E067 = (
        "This gensim model was trained (on {words:,} words) but no update reached its "
        "inner-node weights (syn1 is all zeros): down-sampling of frequent words "
        "(sample={sample}) or the window removed every training example, as happens on a very "
        "small or repetitive corpus. Train with sample=0 (`--word2vec.sample 0`), or on more "
        "text."
    )
    E068 = (
        "Word id {value} is out of range [0, {n}): it is not in the model's vocabulary of {n} "
        "words (ids index model.words). Look words up with model.key_to_index, or pass the "
        "words themselves."
    )
    E069 = (
        "{name} must hold integer word ids, got {what}. Pass a list or an integer numpy array "
        "of ids (model.key_to_index[word]), or the words themselves."
    )
    E070 = (
        "A context must be a sequence of words, not one string: got {context!r}. Split it into "
        "words first, e.g. {example!r}."
    )
    E071 = (
        "Context entries must be words (str) or word ids (int), got {type} {value!r}. Pass "
        "token.text (or the normalised words) for spaCy tokens."
    )
    E072 = (
        "Model file {path} is inconsistent with meta.json: it holds shape {found} and dtype "
        "{found_dtype}, meta.json says {shape} and {dtype}. It belongs to another model, or "
        "meta.json was changed: re-create the model with `spacy-hs train` or HSModel.to_disk."
    )
    E073 = (
        "The new vectors hold {count:,} NaN or infinite value(s), the first at flat index "
        "{index:,}: the training that made them diverged. Retrain with a lower learning rate."
    )
    # Queries
    E020 = "Unknown word {word!r}: it is not in the model's vocabulary of {n} words."
    E021 = "{name} must be a positive integer, got {value!r}."
    E022 = (
        "Expected {n} contexts to go with {n_words} words; pass one context (a list of words) "
        "per target word."
    )
    E023 = (
        "This model has no {head!r} next-word head (it has: {heads}). Train one with "
        "`spacy-hs train` and a [head] section, or choose one of those."
    )
    E027 = (
        "cache must be 'auto', None or {{\"size\": N, \"weight\": λ}} (optionally \"ramp\": c "
        "and \"delay\": m) with N an integer from 1 to 1048576, 0 <= λ < 1, 0 <= c <= 1048576 "
        "and m an integer from 0 to 1048576, got {value!r}."
    )
    E026 = (
        "The sentence lengths add up to {total} tokens, but {n} token ids were given; pass one "
        "non-negative length per sentence, summing to the number of tokens."
    )
    E025 = (
        "The unknown-word setting names {word!r}, which is not in the model's vocabulary. Name a "
        "word of the vocabulary (e.g. '<unk>'), 'auto' (<unk> if present) or None."
    )
    E024 = (
        "Unknown head {head!r}: this model answers through {heads}. Another head needs the "
        "package that registers it and a model trained with it."
    )
    # HS model files: integrity (hs_model.py)
    # Document queries (document.py)
    E044 = (
        "{name} must be integers, got an array of {dtype}. Pass token positions as ints "
        "(a float would be truncated silently), e.g. [0, 3] or np.arange(n)."
    )
    E045 = (
        "{name} holds {value}, outside [0, {n}) for these documents. Pass positions in range: "
        "negative positions do not count from the end."
    )
    E046 = "k must be a positive integer (how many words to return), got {k!r}."
    E047 = "starts has {starts} entries but ends {ends}; pass one start per end, or none."
    E050 = (
        "Model file {path} is corrupted: its data does not match the checksum recorded in "
        "meta.json. Restore it from a backup or re-create the model with `spacy-hs train` or "
        "HSModel.to_disk."
    )
    E051 = (
        "Model {path} changed while it was being loaded (another process replaced or moved "
        "it); nothing is corrupted. Load it again once that process has finished."
    )
    E052 = (
        "Model {path}: meta.json declares arrays of {size:,} bytes, more than the {available:,} "
        "bytes of memory available; nothing was read. Load it on a machine with more memory, or "
        "re-create the model with `spacy-hs train` if meta.json is wrong."
    )
    # Pipeline component (component.py)
    E300 = (
        "The {name!r} component has no model. Give one with "
        "nlp.add_pipe('hs_predictor', config={{'model_path': 'path/to/hs_model'}}), with "
        "model_path in [initialize.components.{name}] of a training config (then "
        "nlp.initialize()), or with nlp.get_pipe({name!r}).from_disk('path/to/hs_model')."
    )
    E301 = "hs_predictor top_k must be a positive integer, got {top_k!r}."
    E302 = (
        "hs_predictor context_size must be a positive integer or None (the head's own), "
        "got {context_size!r}."
    )
    E303 = "hs_predictor head must be one of the model's heads ({heads}), got {head!r}."
    E304 = (
        "Doc {text} has no hs_* values: it was not processed by an hs_predictor component, or "
        "it was read back from a DocBin made without store_user_data=True (the values live in "
        "doc.user_data). Use DocBin(store_user_data=True), or add the component "
        "(nlp.add_pipe('hs_predictor', config={{'model_path': ...}})) and process the text "
        "with nlp(text) or nlp.pipe(texts)."
    )
    E305 = (
        "The hs_predictor that processed Doc {text} is not loaded in this process (the Doc was "
        "read from bytes or a DocBin, or the pipeline was deleted), so values that are computed "
        "on first access (Token._.hs_next, Span._.hs_next; Token._.hs_rank and hs_entropy "
        "unless read before the Doc was stored) are unavailable. Run the loaded component on "
        "the Doc again: nlp.get_pipe('hs_predictor')(doc)."
    )
    E306 = (
        "The extension attribute(s) {names} already exist and were not registered by spacy-hs; "
        "hs_predictor needs them. Remove them with Doc/Span/Token.remove_extension(name) first."
    )
    E307 = (
        "The {name!r} component has no model: model_path {path!r} does not exist and no model "
        "was loaded from the pipeline directory. Fix model_path, or load a model with "
        "nlp.get_pipe({name!r}).from_disk('path/to/hs_model')."
    )
    E308 = (
        "The hs_* values of Doc {text} do not fit its tokens (it was retokenized after "
        "hs_predictor, e.g. by merge_entities, or its stored values were altered), and the "
        "component that made it is not loaded to recompute them. Run the loaded component on "
        "the Doc again: nlp.get_pipe('hs_predictor')(doc)."
    )
    E309 = (
        "The {name!r} component cannot read these bytes ({error}): they were not written by "
        "HSPredictor.to_bytes (empty, cut short, or other data). Pass what to_bytes returned."
    )
    # Pipelines: assemble, package, predict (pipeline.py and their commands)
    E310 = (
        "{path} exists and is neither empty nor a spaCy pipeline with an hs_predictor; refusing "
        "to overwrite it. Choose a new or empty output directory."
    )
    E311 = (
        "{path} is neither an spacy-hs model directory nor a spaCy pipeline directory (no "
        "meta.json, or no config.cfg). Pass a directory written by `spacy-hs train` or "
        "`spacy-hs assemble`."
    )
    E312 = (
        "The pipeline {path} has no hs_predictor component (its components: {names}). "
        "Build one with `spacy-hs assemble MODEL_DIR PIPELINE_DIR`."
    )
    E313 = (
        "{path} is not a spaCy pipeline directory (no {missing}). Pass a directory written by "
        "`spacy-hs assemble` or nlp.to_disk()."
    )
    E314 = (
        "Package name {name!r} is not valid: use ASCII letters, digits and underscores, "
        "starting with a letter (e.g. hs_news); spaCy imports the package by this name."
    )
    E315 = "Package version {version!r} is not valid: use X.Y.Z, e.g. 1.0.0."
    E316 = (
        "Building the wheel failed (exit code {code}) with `{command}`:\n{output}\n"
        "Install the build tools in this environment (pip install build setuptools wheel), or "
        "pass --isolation to let `python -m build` create its own build environment."
    )
    E317 = (
        "{path} already exists; refusing to overwrite the package directory. Delete it or "
        "pass --force."
    )
    E319 = (
        "spaCy could not create the package directory (exit code {code}): {output} Fix what "
        "spaCy reports, then run `spacy-hs package` again."
    )
    E318 = (
        "Unknown language {lang!r}: spaCy has no language class for it. Use an ISO code that "
        "spaCy supports, e.g. en, de, fr, or xx for multi-language."
    )
    # Pipelines and packages: bounds, links, versions
    E330 = (
        "hs_predictor context_size={context_size} is more than {limit}, the most context words "
        "spacy-hs reads (longer contexts only cost memory: {limit} int32 ids per token). Use "
        "a context_size up to {limit}, or leave it unset to use the head's own."
    )
    E331 = (
        "Refusing to package {path}: it holds symbolic link(s) {links}. A package would copy "
        "the files they point to, which may lie outside the pipeline, into the wheel. Replace "
        "each link with the file itself (e.g. `cp --remove-destination \"$(readlink -f L)\" L`) "
        "or remove it."
    )
    # Tree heads (heads/, training/head.py)
    E400 = (
        "Model {path} has a {kind} head that cannot be loaded: {reason}. Re-train the head "
        "with `spacy-hs train` (or spacy_hs.training.head.train_head and HSModel.to_disk), or "
        "install the package that registers its architecture."
    )
    E402 = (
        "eos_token {token!r} is not in the model's vocabulary, so the head cannot predict it. "
        "Append it to every line of the corpus before training gensim (with a min_count it "
        "passes), or set eos_token = null."
    )
    E403 = "[head] {option} = {value!r} is not valid: {expected}."
    E404 = (
        "Not enough text to train the directional head on {path}: {n_train} training and "
        "{n_heldout} held-out sentences with known words. Pass a larger corpus, a heldout_path, "
        "or a larger heldout_fraction."
    )
    E405 = "unknown head architecture {found!r}, expected one of: {expected}"
    E406 = "head context_size {size!r} or width {width!r} is not valid"
    E415 = (
        "head context_size {size!r} or width {width!r} is not valid: each must be a positive "
        "integer, and the width that of the model's vectors, {vector_size}"
    )
    E407 = "the head array {name} is missing"
    E408 = (
        "head array {name} has shape {shape} and dtype {dtype}, expected {expected} and "
        "{dtype_expected}"
    )
    E409 = (
        "the n-gram head's hash version {found!r} is not the one this spacy-hs computes "
        "({expected}); install the spacy-hs version that wrote the model or re-train the head"
    )
    E410 = "the n-gram table size {value!r} must be an integer from {low} to {high}"
    E411 = "the n-gram orders {orders!r} must be a positive integer no larger than context_size"
    E412 = (
        "the n-gram table's slots and values must be int32 and float16 arrays of equal length, "
        "slots increasing and below the table size {size}"
    )
    E413 = (
        "[head] ngram_orders = {orders} needs context_size >= {orders} (got {size}): the "
        "features hash the last ngram_orders words of the head's context"
    )
    E414 = (
        "[head] table_size = {size} must be at least the vocabulary size ({n_words}); use "
        "2**20 or more (e.g. 2**26 for Penn Treebank)"
    )
    E416 = (
        "The head's training diverged at epoch {epoch} (train loss {loss:.4g}, held-out "
        "perplexity {perplexity:.4g}, {initial:.4g} before training), so nothing was saved: "
        "lower the step size ({rates}), e.g. to a tenth, and train again."
    )
    E418 = (
        "{path} has {n_lines:,} line(s): the head holds out whole lines (heldout_fraction = "
        "{fraction:g}), and this split leaves its training or held-out text empty. Put one "
        "sentence per line (`spacy-hs preprocess` does), pass a held-out token file, or change "
        "head.heldout_fraction."
    )
    E419 = (
        "The head's scratch directory in {path} (TMPDIR) is full ({free:,} bytes free; the "
        "encoded corpus needs 4 bytes per token). Nothing was saved: free space there, or set "
        "TMPDIR to a directory on a larger file system."
    )
    E420 = (
        "the recurrent head's context_size {size!r}, width {width!r}, hidden_width {units!r} "
        "or orders {orders!r} is not valid: the width must be that of the model's vectors "
        "({vector_size}), hidden_width at most {max_units}, context_size and orders at most "
        "{max_size}; re-train the head with `spacy-hs train`"
    )
    # Evaluation (evaluate.py)
    E191 = "{option} must be 'off' or 'auto', got {value!r}."
    E200 = (
        "Held-out token file {path} does not exist. Pass a token file written by "
        "`spacy-hs preprocess` (for example its --heldout output)."
    )
    E201 = (
        "Held-out token file {path} has no tokens. Pass a non-empty token file (one sentence per "
        "line, tokens separated by spaces)."
    )
    E202 = (
        "No position of held-out file {path} could be scored: of its {n_tokens} tokens, {oov} "
        "are out of the model's vocabulary and {no_context} have no known word before them in "
        "their sentence. Preprocess the held-out text with the same settings as the training "
        "corpus (lowercasing, placeholders), and train on more text or a lower min_count."
    )
    E203 = (
        "gensim's test data file {path} is missing (some gensim builds strip it). Pass your own "
        "file with {option}, or reinstall gensim from its PyPI wheel."
    )
    E205 = "gensim model file {path} does not exist. Pass a file written by Word2Vec.save()."
    E206 = (
        "Cannot load {path} as a gensim Word2Vec model: {reason}. Pass a file written by "
        "gensim's Word2Vec.save() (not KeyedVectors, not an spacy-hs model directory)."
    )
    E207 = (
        "max_positions must be a positive integer, got {value!r}. It caps how many held-out "
        "positions gensim's predict_output_word is measured on."
    )
    E208 = "{option} file {path} does not exist. Pass the path of an existing evaluation file."
    E209 = "Metrics output {path} is a directory. Pass a file path such as metrics.json."
    E210 = (
        "{option} file {path} is {kind}, not a regular file. Pass the path of a file (a FIFO "
        "or a device is refused, as reading it could wait for a writer or never end)."
    )
    # Training (word2vec.py, train.py)
    E150 = (
        "{what} {path} does not exist. Pass a token file written by `spacy-hs preprocess` (one "
        "sentence per line, tokens separated by single spaces, UTF-8)."
    )
    E151 = (
        "{what} {path} is a directory. Pass the token file itself (`spacy-hs preprocess` writes "
        "one file from a directory of texts)."
    )
    E171 = (
        "{what} {path} is {kind}, not a regular file. Token files are read more than once (a "
        "check, then each epoch), and a FIFO would block and a device never end: write the "
        "tokens to a file first and pass that file."
    )
    E152 = (
        "{what} {path} is compressed; gensim's corpus_file mode reads plain text only. "
        "Decompress it first (for example `gunzip -k {path}`), or run `spacy-hs preprocess` on it."
    )
    E153 = (
        "{what} {path} is not UTF-8 (line {line}, byte {offset}: {reason}). Training reads the "
        "file as raw bytes in gensim's corpus_file mode, so it cannot repair it: re-create it with "
        "`spacy-hs preprocess`, which replaces invalid bytes and counts them, or re-encode it "
        "(for example `iconv -f latin1 -t utf-8`)."
    )
    E154 = (
        "{what} {path} has no tokens. Pass a non-empty token file (one sentence per line, tokens "
        "separated by spaces), for example the output of `spacy-hs preprocess`."
    )
    E155 = (
        "Only {n_kept} word type(s) of corpus {path} occur at least min_count={min_count} times "
        "(it has {n_words:,} words and {n_types:,} distinct ones; the most frequent occurs "
        "{max_count:,} times); a model needs at least 2. Lower the threshold, for example "
        "`--word2vec.min_count {suggestion}`, or train on more text."
    )
    E156 = (
        "Config file {path} does not exist. Pass an existing .cfg file (configs/default.cfg is "
        "the bundled default), or leave --config out to use the built-in defaults."
    )
    E157 = (
        "Cannot read config {path}: {reason}. It must be a confection/thinc config: [sections] "
        "with `key = value` lines, as in configs/default.cfg."
    )
    E158 = "Unknown config section [{section}]. Valid sections: {valid}."
    E159 = "Unknown setting {section}.{key}. Valid settings in [{section}]: {valid}."
    E160 = "Config setting {section}.{key} must be {expected}, got {value!r}."
    E161 = (
        "word2vec.hs = {hs}: spacy-hs needs hierarchical softmax, hs = 1. Its exact next-word "
        "probabilities are products of sigmoids along each word's path in the Huffman tree that "
        "hs = 1 trains (the inner-node weights syn1); without it there is no tree to score with. "
        "Set `--word2vec.hs 1`."
    )
    E162 = (
        "word2vec.negative = {negative}: set it to 0 (`--word2vec.negative 0`). Negative "
        "sampling trains a second output layer (syn1neg) that spacy-hs never uses; the input "
        "vectors are then fitted to both objectives at once, so the hierarchical-softmax "
        "probabilities are no longer those of the model that was trained, and training is slower."
    )
    E163 = (
        "Config setting {section}.workers = {value} is more than {limit}, {factor} times the "
        "{cores} core(s) this process may use: more threads than that only wait for a core, "
        "each with its own buffers, and a huge number never finishes starting. Use 0 (one per "
        "core) or a number up to {limit}."
    )
    E169 = (
        "Config section [{section}] names @settings = {name!r}, {problem}. Valid names for "
        "[{section}]: {valid}."
    )
    E170 = (
        "word2vec.vector_size = {vector_size:,} with a vocabulary of {words:,} words needs about "
        "{need} for the vectors and inner-node weights alone (gensim's and the HS model's "
        "copies, {bytes_per} bytes per word and dimension), but this machine has {available} "
        "of memory available. Lower --word2vec.vector_size (e.g. to {suggestion:,}, which "
        "leaves room for the rest), or raise --word2vec.min_count for a smaller vocabulary."
    )
    E164 = "Output directory {path} is a file. Pass a directory path (it is created if missing)."
    E165 = (
        "Cannot read the corpus metadata {path}: {reason}. Re-create the corpus with "
        "`spacy-hs preprocess`, or delete the file to train without it (the model then gets "
        "lang 'en' and no normalizer settings)."
    )
    E172 = (
        "The corpus metadata {path} is {size:,} bytes, more than the {limit:,} that "
        "`spacy-hs preprocess` writes (the model's meta.json would be too large to load). "
        "Re-create the corpus with `spacy-hs preprocess`, or delete the file to train without it."
    )
    E167 = (
        "Unexpected argument {arg!r}. Config overrides take the form --section.key value, "
        "e.g. --word2vec.epochs 10."
    )
    E168 = (
        "No such option {arg!r}. Config settings are overridden with --section.key value, "
        "e.g. --word2vec.epochs 10.{hint}"
    )
    E166 = (
        "{path} exists and is not an spacy-hs model directory, so the trained model could not "
        "be written there. Choose another OUTPUT_DIR, or move that directory away."
    )

    # Outputs: never over an input, never inside a model, never over files spacy-hs did not
    # write (util.check_output_location, staging_dir, atomic_outputs); unreadable inputs.
    E180 = (
        "Refusing to write {path}: it is {relation} {input}, an input of this command, which "
        "would be lost. Write the output somewhere else."
    )
    E181 = (
        "Refusing to write {path}: it is inside {directory}, {kind}, which it would change or "
        "destroy. Write the output outside that directory."
    )
    E182 = (
        "Refusing to replace {path}: it holds {count} item(s) that spacy-hs did not write, "
        "which replacing it would delete: {items}. Move them out of {path}, or choose another "
        "output path."
    )
    E183 = (
        "Refusing to replace {path}: {why}, so it may not be an output of spacy-hs and "
        "replacing it could lose your data. Move it away (or delete it, if it is an earlier "
        "output of spacy-hs), or choose another output directory."
    )
    E184 = (
        "Cannot read {path}: {reason}. Its name ends in {suffix}, but it is not a complete "
        "{format} file (not compressed, or truncated). Check it with `{check}`; if it is plain "
        "text, rename it without the {suffix} suffix."
    )
    E185 = "Cannot read input {path}: {reason}. Check that it is a readable text file."
    E190 = "Option {option} must be {expected}, got {value!r}. Pass a value in that range."
    E186 = (
        "Plots directory {path} is a file. Pass a directory path for loss.png and "
        "next_word.png (it is created if missing)."
    )

    # Preprocessing and the default corpus (preprocess.py, corpus.py)
    E100 = "Input {path} does not exist. Check the path, or pass a file or directory of text."
    E113 = (
        "Input {path} is {kind}, not a regular file: reading it could wait for a writer or "
        "never end. Write the text to a file first and pass that file."
    )
    E101 = (
        "Directory {path} holds no text files (looked for {suffixes}, optionally .gz or .bz2 "
        "compressed). Put the text in such files, or pass the files themselves."
    )
    E102 = (
        "Line {line} of {path} is not valid JSON ({reason}). Each line of a .jsonl file must be "
        'one JSON object such as {{"text": "..."}}.'
    )
    E103 = (
        'Line {line} of {path} has no "text" string field (found {found}). Each line of a '
        '.jsonl file must be a JSON object such as {{"text": "..."}}; convert the file first.'
    )
    E104 = (
        "The corpus is empty: no token is left in {inputs} after normalisation and "
        "min_sentence_length={min_length} ({documents} document(s) read). Check the input holds "
        "text, or relax the filters (--punct/--numbers/--urls keep, --stopwords keep, a lower "
        "--min-sentence-length). Nothing was written."
    )
    E105 = (
        "The held-out split is empty: none of the {sentences} sentence(s) fell into it with "
        "--heldout-fraction {fraction}. Raise the fraction or give more text. Nothing was written."
    )
    E106 = (
        "Refusing to write {path}: it is also an input ({input}), so its text would be lost. "
        "Write the token file somewhere else."
    )
    E107 = (
        "Refusing to write {path} inside input directory {input}: the next run would read it "
        "as input. Write the token file outside the input directories."
    )
    E108 = "The held-out file and the output are both {path}. Give --heldout another path."
    E109 = (
        "Cannot make a spaCy pipeline for language {lang!r}: {reason}. Pass an ISO code spaCy "
        "supports (e.g. en, de, fr), and install the extra packages that language needs."
    )
    E110 = "{name} must be {expected}, got {value!r}."
    E111 = "Output {path} is a directory. Pass a file path such as corpus.tok.txt."
    E112 = "Normaliser setting {name}={value!r} is not one of {choices}."
    E115 = (
        "Input {path} is {kind}, not text: its bytes would be read as words. Extract it first "
        "(`{command}`) and pass the text files, or the directory, it holds."
    )
    E114 = (
        "{option} {value} is more than {limit}, {factor} times the {cores} core(s) this process "
        "may use: each worker process loads its own Python and spaCy pipeline and then waits "
        "for a core, so more only cost memory and time. Use at most {limit}."
    )
    E120 = (
        "gensim's test data is not installed (looked for {path}). The default corpus ships "
        "inside gensim's PyPI package (gensim/test/test_data), which some system packages strip: "
        "reinstall it with `pip install --force-reinstall gensim`, or preprocess your own text."
    )
    E121 = (
        "No article of {path} is left after dropping redirects and stubs (max_articles="
        "{max_articles}, min_words={min_words}). Raise max_articles or lower min_words."
    )
    E122 = "Output directory {path} is a file. Pass a directory path (it is created if missing)."
    E123 = (
        "Corpus source {source!r} needs {path}, which is missing. Download it with "
        "`spacy project assets` (needs network), or use --source default."
    )
    E124 = "Unknown corpus source {source!r}: choose one of {choices}."
    E125 = (
        "Cannot read {path}: {reason}. Delete it and download it again with `spacy project assets`."
    )
    # Preprocessing on a Dask cluster (corpus/dask_engine.py)
    E800 = (
        "The Dask engine needs dask and distributed, which are not installed ({reason}). "
        'Install them with: pip install "spacy-hs[dask]"'
    )
    E801 = (
        "Cannot connect to the Dask scheduler at {address} within {timeout:g} s ({reason}). "
        "Check the address (tcp://HOST:PORT, as printed by `dask scheduler`) and that the "
        "scheduler is running and reachable, or leave out --scheduler to start a local cluster."
    )
    E802 = "Preprocessing {unit} failed on a Dask worker, so nothing was written: {reason}"
    E803 = (
        "A Dask worker ({worker}) cannot see {path}. Client and workers must share a filesystem, "
        "with the inputs and the output directory at the same absolute paths on every machine."
    )
    E804 = (
        "Dask workers died {count} time(s) while preprocessing {unit} ({reason}), so the run "
        "stopped; nothing was written. A worker running out of memory is the usual cause: give "
        "workers more memory, or pass a smaller --chunk-mb."
    )
    E805 = (
        "n_process={n_process} applies to the local engine only. With the Dask engine, set the "
        "number of workers instead (--workers, or the size of the cluster at --scheduler)."
    )
    E806 = (
        "The Dask scheduler at {address} has no workers (waited {timeout:g} s). Start some with "
        "`dask worker {address}`, or leave out --scheduler to start a local cluster."
    )
    E807 = "{options} only apply to --engine dask. Add --engine dask, or leave them out."
    E808 = (
        "The Dask cluster at {address} has had no worker for {seconds:g} s, so {count} task(s) "
        "cannot run; the run stopped and nothing was written. Start workers "
        "(`dask worker {address}`) and run again."
    )

    # Scoring corpora (scoring/, cli/score.py)
    E900 = (
        "Cannot load pipeline {name}: {reason}. Pass a directory written by `spacy-hs "
        "assemble` (or `spacy-hs train`), or the name of an installed pipeline package."
    )
    E901 = (
        "Pipeline {name} has no hs_predictor component (components: {names}), so it gives no "
        "perplexity. Use a pipeline made by `spacy-hs assemble`, or add the component."
    )
    E902 = (
        "Line {line} of {path} is not valid JSON ({reason}). Each line of a JSON Lines file must "
        'be one JSON object such as {{"id": 1, "text": "..."}}; fix the line, or pass '
        "--skip-bad to skip bad lines."
    )
    E903 = (
        "Line {line} of {path} has no {field!r} string field (found {found}). Name the text's "
        "field with --text-field, or pass --skip-bad to skip such lines."
    )
    E904 = (
        "Line {line} of {path} is not valid UTF-8 ({reason}). Convert the file first (e.g. "
        "`iconv -f latin1 -t utf-8`), or pass --skip-bad to skip the documents of such lines."
    )
    E905 = (
        "Input {path} {problem}. Pass files of documents: JSON Lines (.jsonl) or plain text "
        "with a blank line between documents, either optionally .gz compressed."
    )
    E906 = "Cannot read input {path}: {reason}. Check that it is a readable (gzip) file."
    E907 = (
        "Output {path} is a directory. Pass a file path such as scores.jsonl (or "
        "scores.parquet for Parquet)."
    )
    E908 = (
        "Writing {path} as Parquet needs pyarrow, which is not installed ({reason}). Install it "
        'with pip install "spacy-hs[parquet]", or write JSON Lines (a name ending in .jsonl).'
    )
    E909 = (
        "--buckets must be two percentiles between 0 and 100 in increasing order, such as "
        "33,66; got {value!r}."
    )
    E910 = (
        "--cutoffs must be two perplexities in increasing order (e.g. 120,450), or a cutoffs "
        "file written beside an earlier output (*.cutoffs.json); got {value!r}: {reason}."
    )
    E911 = (
        "Give either --buckets (cutoffs at percentiles of this corpus) or --cutoffs (cutoffs "
        "given), not both."
    )
    E912 = "{option} must be {expected}, got {value!r}."
    E913 = (
        "--kept needs --max-perplexity: give the perplexity at or under which a document is "
        "kept."
    )
    E914 = (
        "No document of the sample has a perplexity (no token was scored), so --buckets has no "
        "percentiles to cut at. Check the pipeline's language and the text field, or give "
        "--cutoffs."
    )
    E915 = (
        "Scoring documents {first} to {last} failed on a Dask worker, so nothing was written: "
        "{reason}"
    )
    E916 = (
        "Dask workers died {count} time(s) while scoring documents {first} to {last} ({reason}), "
        "so the run stopped; nothing was written. A worker running out of memory is the usual "
        "cause: give workers more memory, or pass a smaller --chunk-mb."
    )
    E917 = (
        "A worker process died while scoring documents {first} to {last} ({reason}), so the run "
        "stopped; nothing was written. A worker running out of memory is the usual cause: use "
        "fewer --workers or a smaller --chunk-mb."
    )
    E918 = "Refusing to write {path}: {other} is written there too. Give each output its own path."

    # Surprisal view (surprisal.py, view/, cli/render.py)
    E702 = "top_k must be a positive integer, got {top_k!r}."
    E703 = (
        "Expected a spaCy Doc or Span, got {type}. Pass a Doc, a Span or a list of them, e.g. "
        "render(nlp(text)) or render(list(nlp.pipe(texts)))."
    )
    E704 = (
        "Token {i}: the next-word distribution computed through the tree ({ours}) disagrees "
        "with the hs_predictor's log-probability ({theirs}), so its rank would not be exact. "
        "The head scores words in a way the surprisal view does not follow: report this, with "
        "the model's head settings."
    )
    E710 = "Unknown render option(s) {keys}. Valid options: {valid}."
    E711 = (
        "Option thresholds={value!r} is not valid: give increasing positive integers, e.g. "
        "[10, 100, 1000] (GLTR's)."
    )
    E712 = (
        "Option colors={value!r} is not valid: give {n} hex colours such as '#adff80', one per "
        "rank bucket (one more than there are thresholds)."
    )
    E713 = (
        "Option surprisal_colors={value!r} is not valid: give two or more hex colours such as "
        "'#ffffcc', from low to high surprisal."
    )
    E714 = (
        "Option surprisal_max={value!r} is not valid: give a positive number of bits, or None "
        "(log2 of the vocabulary size)."
    )
    E715 = "Option top_k={value!r} is not valid: give an integer from 1 to {max}."
    E716 = "Unknown style {style!r}: choose one of {styles}."
    E720 = "Port {port!r} is not valid: give an integer from 0 (any free port) to 65535."
    E721 = (
        "Cannot serve on {host}:{port}: {reason}. Use a local address such as 127.0.0.1 (the "
        "default) or 0.0.0.0 for every interface."
    )
    E722 = (
        "Port {port} on {host} is in use. Pass another port (--port, or port=0 for any free "
        "one), or auto_select_port=True to take the next free one."
    )
    E723 = "No free port on {host} from {port} to 65535. Pass port=0 to let the system choose."
    E724 = (
        "timeout={value!r} is not valid: give the seconds a connection may stay open, a "
        "number above 0 and at most {most:g} (a day; default 10)."
    )
    E725 = (
        "max_connections={value!r} is not valid: give the connections served at once, an "
        "integer from 1 to 10000 (default 32)."
    )
    E726 = (
        "allowed_hosts contains {value!r}: give host names such as 'myhost.lan' (without "
        "the port), or '*' for any."
    )
    E730 = (
        "Give the text to render either as INPUT (a text file, or - for stdin) or with --text, "
        "not both."
    )
    E731 = (
        "Nothing to render: give INPUT (a text file with one document per line, or - for "
        "stdin) or --text \"...\"."
    )
    E732 = "Input {path} does not exist. Pass a text file (one document per line), or - for stdin."
    E733 = "Input {path} is a directory. Pass a text file (one document per line)."
    E740 = (
        "Input {path} is {kind}, not a regular file: reading it could wait for a writer or "
        "never end. Pass a text file, or - to read stdin."
    )
    E734 = (
        "Input {path} is not UTF-8 ({reason}). Convert it first, for example with "
        "`iconv -f latin1 -t utf-8 {path} > text.txt`."
    )
    E735 = (
        "No text to render in {path}: every line is empty. Give a file with one document per "
        "line."
    )
    E737 = "Output {path} is a directory. Pass a file path such as --output view.html."
    E738 = (
        "{what} is not UTF-8 (byte 0x{byte:02x} at character {position}): the bytes are in "
        "another encoding. Convert them to UTF-8 first (e.g. with `iconv -f latin1 -t utf-8`), "
        "or put the text in a UTF-8 file."
    )
    E739 = (
        "--sentences-per-doc groups the lines of a token file: add --pretokenized, or leave it "
        "out (plain text has one document per line)."
    )
    E741 = (
        "Document {number} has {length:,} characters, more than the pipeline's max_length "
        "({limit:,}) that spaCy tokenizes at once. Split it into several lines (each line is a "
        "document), or pass a token file of it (`spacy-hs preprocess`) with --pretokenized."
    )

class Warnings(metaclass=ErrorsWithCodes):
    W011 = "{word!r} is not in the model's vocabulary: scored as {unknown!r}."
    W010 = (
        "{path} was missing: a run that replaced it was interrupted after setting the previous "
        "version aside as {old}. That previous version has been restored."
    )
    W001 = (
        "The context {context} holds no word of the model's vocabulary (it is empty, or all "
        "its words are out of vocabulary), so the CBOW-style head has nothing to predict from. "
        "Give context words the model knows, normalised as the training corpus was (see "
        "model.settings)."
    )
    W002 = (
        "The context is empty and this head cannot predict a sentence's first word; no "
        "prediction is possible. Pass some context words, or use a head that scores sentence "
        "starts (the trained directional or n-gram head)."
    )
    # Building and loading models
    W021 = (
        "The model's vectors are now the directional head's fine-tuned ones "
        "(export_fine_tuned_vectors), but its inner-node weights are still gensim's, trained "
        "with the original vectors: the CBOW-style head (head='cbow') mixes the two, and its "
        "probabilities are not those of a trained model. Use the directional head, or leave "
        "export_fine_tuned_vectors off."
    )
    W020 = (
        "This gensim model was trained with negative sampling as well (negative={negative}): "
        "its negative-sampling output layer (syn1neg) is ignored, and only the hierarchical "
        "softmax (syn1) scores words. The input vectors were fitted to both objectives, so "
        "the HS probabilities are not those of a pure HS model: for those, train with hs=1, "
        "negative=0 (as `spacy-hs train` does)."
    )
    # Pipeline component (component.py)
    W300 = (
        "context_size={size} is longer than the {name} head's context of {head} words; "
        "using {head}. Leave context_size unset to use the head's own."
    )
    W302 = (
        "{name}: the model has no normaliser settings and every word of its vocabulary is "
        "lowercase, so tokens are looked up lowercased (as Token.lower_). Give the settings with "
        "HSModel.from_gensim(w2v, normalizer=...) to use others."
    )
    W301 = (
        "The model was trained on {model_lang!r} text but the pipeline's language is {lang!r}; "
        "tokens may be normalised differently from the training corpus. Build the pipeline "
        "with spacy.blank({model_lang!r})."
    )
    # Surprisal view (view/)
    W700 = (
        "serve() blocks this notebook's kernel until it is interrupted. In a notebook, show "
        "the view in place with spacy_hs.render(docs) instead."
    )
    # Evaluation (evaluate.py)
    W200 = (
        "matplotlib is not installed, so no plots were drawn (the metrics are complete). "
        "Install it with: {command}"
    )
    W201 = (
        "Held-out file {path} was normalised with {found}, but the model with {expected}: "
        "next-word scores will be low. Preprocess it with the model's settings."
    )
    W202 = (
        "The model's meta has no loss_history, so no loss plot was drawn. Models trained with "
        "`spacy-hs train` record it."
    )
    W204 = (
        "No word pair of {path} is in the model's vocabulary: its correlation is not defined. "
        "Train on a larger corpus or check the model's normalisation (lowercasing)."
    )
    # Training (word2vec.py, train.py)
    # Scoring corpora (scoring/)
    W900 = (
        "Skipped {count} bad input line(s) (--skip-bad); the first: {first}. Their documents "
        "have no score."
    )
    # Preprocessing (preprocess.py)
    W100 = (
        "{path}: {count} byte(s) were not valid UTF-8 and were replaced with U+FFFD. If the file "
        "uses another encoding, convert it first (e.g. `iconv -f latin1 -t utf-8`)."
    )
    W101 = (
        "Skipped {count} file(s) in {path} that are not text (e.g. {example}); only {suffixes} "
        "files (optionally .gz or .bz2) are read from directories. Pass other files explicitly."
    )
    W102 = (
        "{count} line(s) were longer than max_length={max_length} characters and were split at "
        "whitespace; a sentence may be cut where a line was split."
    )
