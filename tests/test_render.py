"""The surprisal view (spacy_hs.view): the page's markup, its safety, serving it, and the page in
a real browser (headless Chromium through selenium): the DOM contract against the model's own
numbers, tooltips on hover and focus, the mode switch, no network, no injected script."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import spacy
from conftest import LEE, train_lee
from spacy.language import Language
from spacy.tokens import Doc

import spacy_hs
from spacy_hs import HSModel
from spacy_hs.corpus.normalize import TokenNormalizer
from spacy_hs.errors import ConfigError, ServeError, WrongTypeError
from spacy_hs.view import ViewServer, render, serve
from spacy_hs.view.surprisal import SCORED, doc_surprisals

INSTALL = "apt-get install -y chromium chromium-driver && pip install selenium"
ATTACK = "<script>alert(1)</script>"
# A word of the model's vocabulary that would close the JSON block and run a script, were the
# predictions not escaped.
INJECTED_WORD = "</script><svg/onload=alert(2)>"
STORIES = (LEE.parent / "lee.cor").read_text(encoding="latin1").splitlines()[:2]
TEXTS = [*STORIES, f"He wrote {ATTACK} in the national executive's report."]


def make_nlp(model: HSModel) -> Language:
    """The head alone (``directional_model`` has a tuned document cache): the browser tests
    check the page against the head's own API."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor", config={"cache": None}).set_model(model)
    return nlp


@pytest.fixture(scope="module")
def nlp(directional_model: HSModel) -> Language:
    return make_nlp(directional_model)


@pytest.fixture(scope="module")
def docs(nlp: Language) -> list[Doc]:
    return list(nlp.pipe(TEXTS))


@pytest.fixture(scope="module")
def injected_model(normalized_token_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """Real gensim training on the Lee text with INJECTED_WORD after every "said", so it is
    among the first predictions there."""
    lines = normalized_token_file.read_text(encoding="utf8").splitlines()
    injected = [line.replace(" said ", f" said {INJECTED_WORD} ") for line in lines]
    path = tmp_path_factory.mktemp("injected") / "lee.tok.txt"
    path.write_text("\n".join(injected) + "\n", encoding="utf8")
    gensim_model = train_lee(sg=0, hs=1, negative=0, corpus_file=str(path))
    model = HSModel.from_gensim(
        gensim_model, settings={"normalizer": {"punct": "drop"}, "lang": "en"}
    )
    assert INJECTED_WORD in model
    return model


def tokens_in(html: str) -> list[dict[str, str]]:
    """The DOM contract's attributes of every token, read from the markup with a regex."""
    pattern = re.compile(
        r'<span class="hs-token[^"]*" data-rank="([^"]*)" data-logprob="([^"]*)" '
        r'data-entropy="([^"]*)" data-status="([^"]*)">'
    )
    keys = ("rank", "logprob", "entropy", "status")
    return [dict(zip(keys, match)) for match in pattern.findall(html)]


# -- the markup -------------------------------------------------------------------------------


def test_page_is_self_contained_with_a_content_security_policy(docs: list[Doc]) -> None:
    html = render(docs, page=True)
    assert html.startswith("<!DOCTYPE html>")
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert policy, "no CSP meta tag"
    directives = dict(d.strip().split(" ", 1) for d in policy.group(1).split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == directives["img-src"] == "'none'"
    # Only the page's own style sheet and script, by hash.
    (css,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert directives["style-src"] == f"'{_sha256(css)}'"
    assert directives["script-src"] == f"'{_sha256(script)}'"
    # Nothing refers to anything outside the page.
    for pattern in (r"https?:", r"\bsrc=", r"\bhref=", r"@import", r"url\((?!#)", r"//[a-z]"):
        assert not re.search(pattern, html.replace(ATTACK, "")), pattern
    assert len(tokens_in(html)) == sum(len(doc) for doc in docs)


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf8")).digest()).decode()


def test_text_and_predictions_are_escaped(injected_model: HSModel) -> None:
    nlp = make_nlp(injected_model)
    doc = nlp(f"The minister said {ATTACK} & more.")
    doc.user_data["title"] = "<b>Story</b>"  # displaCy's title key, escaped too
    html = render(doc, page=True)
    assert ATTACK not in html and "<svg/onload" not in html and "<b>Story" not in html
    assert "<h2>&lt;b&gt;Story&lt;/b&gt;</h2>" in html
    assert "&lt;" in html and "&amp;" in html
    # Only the view's script executes: the other <script> elements are JSON data blocks.
    assert html.count("<script>") == 1
    assert html.count("<script") == 1 + 1 + len([doc])  # the script, the config, one data block
    # The injected word is a prediction (after "said"), stored escaped in the JSON block.
    data = re.search(r'<script type="application/json" class="hs-data">(.*?)</script>', html)
    assert data and INJECTED_WORD in json.loads(data.group(1))["words"]


def test_fragment_for_embedding_and_minify(docs: list[Doc]) -> None:
    fragment = render(docs)
    assert fragment.startswith('<div class="hs-view') and "<html" not in fragment
    assert "<style>" in fragment  # scoped styles travel with the fragment
    minified = render(docs, minify=True)
    assert len(minified) < len(fragment)
    assert tokens_in(minified) == tokens_in(fragment)
    # Token text and whitespace are content: minify leaves them alone.
    assert re.sub(r"<[^>]+>", "", minified).count(STORIES[0].split()[5]) >= 1


def test_dom_contract_matches_the_surprisal_values(docs: list[Doc]) -> None:
    html = render(docs, page=True)
    tokens = tokens_in(html)
    results = doc_surprisals(docs)
    expected = [
        (r.status[i], r.ranks[i], r.log_probs[i], r.entropies[i])
        for r in results
        for i in range(len(r))
    ]
    assert len(tokens) == len(expected)
    for token, (status, rank, log_prob, entropy) in zip(tokens, expected):
        assert token["status"] == status
        assert token["rank"] == ("" if rank is None else str(rank))
        assert token["logprob"] == ("" if log_prob is None else f"{log_prob:.4f}")
        assert token["entropy"] == ("" if entropy is None else f"{entropy:.3f}")
    doc_stats = re.findall(r'data-perplexity="([^"]*)" data-mean-surprisal="([^"]*)"', html)
    assert [float(p) for p, _ in doc_stats] == pytest.approx(
        [doc._.hs_perplexity for doc in docs], rel=1e-4
    )


def test_the_page_says_which_word_a_token_was_scored_as(nlp: Language) -> None:
    """Token._.hs_word where it differs from the token's text ("Police" as "police", "1984"
    as "<num>"), for the tooltip."""
    doc = nlp("Police said the fire started in 1984 near the town.")
    html = render([doc], page=False)
    (data,) = [json.loads(m) for m in re.findall(r'class="hs-data">(.*?)</script>', html, re.S)]
    expected = {
        str(t.i): t._.hs_word
        for t in doc
        if t._.hs_logprob is not None and t._.hs_word != t.text
    }
    assert data["scored_as"] == expected
    assert expected.get("6") == "<num>" and expected.get("0", "police") == "police"
    assert "scored as" in (Path(spacy_hs.__file__).parent / "view/static/view.js").read_text()


def test_spans_render_their_tokens_only(docs: list[Doc]) -> None:
    span = docs[0][3:15]
    tokens = tokens_in(render(span))
    assert len(tokens) == 12
    assert tokens == tokens_in(render(docs[0]))[3:15]


def test_options_are_validated(docs: list[Doc]) -> None:
    html = render(docs[0], options={"thresholds": [5, 50], "colors": ["#0f0", "#ff0", "#f00"]})
    assert "--hs-b2:#ff0000" in html and "hs-b3" not in html
    bad = [
        ({"colour": "red"}, "Unknown render option"),
        ({"colors": ["red;}body{display:none", "#fff", "#fff", "#fff"]}, "hex colours"),
        ({"thresholds": [100, 10]}, "increasing"),
        ({"thresholds": [10, 100]}, "hex colours"),  # default colours fit 3 thresholds only
        ({"top_k": 0}, "top_k"),
        ({"surprisal_max": float("nan")}, "surprisal_max"),
        ({"surprisal_colors": ["#fff"]}, "two or more"),
    ]
    for options, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            render(docs[0], options=options)
    with pytest.raises(ConfigError, match="Unknown style"):
        render(docs[0], style="gltr")


@pytest.mark.parametrize("value", [b"The man said.", 5, None, "The man said."])
def test_render_of_what_is_not_a_doc(value: object) -> None:
    """Not "TypeError: 'int' object is not iterable": the coded error that names the fix."""
    with pytest.raises(WrongTypeError, match=r"\[E703\] Expected a spaCy Doc or Span, got"):
        render(value)


def test_docs_without_hs_predictor_get_an_error_that_names_the_fix() -> None:
    doc = spacy.blank("en")("Nothing scored this.")
    with pytest.raises(ValueError, match=re.escape("nlp.add_pipe('hs_predictor'")):
        render(doc)


def test_top_level_names() -> None:
    assert spacy_hs.render is render and spacy_hs.serve is serve
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


def test_jupyter_displays_the_view(docs: list[Doc]) -> None:
    pytest.importorskip("IPython", reason="IPython is not installed: pip install ipython")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with capture_output() as captured:
        assert render(docs[0], jupyter=True) is None
    (output,) = captured.outputs
    assert output.data["text/html"] == render(docs[0], jupyter=False)


# -- serving ----------------------------------------------------------------------------------


def test_view_server_serves_the_page_and_stops(docs: list[Doc]) -> None:
    html = render(docs, page=True)
    with ViewServer(html, port=0) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert response.read().decode("utf8") == html
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url + "favicon.ico", timeout=5)
        url = server.url
        started = time.monotonic()
    assert time.monotonic() - started < 3
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


def test_a_taken_port_is_an_error_or_skipped(docs: list[Doc]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match=f"Port {port} on 127.0.0.1 is in use"):
            ViewServer("<p>x</p>", port=port)
        server = ViewServer("<p>x</p>", port=port, auto_select_port=True)
        assert server.port > port
        server.stop()
    with pytest.raises(ServeError, match="not valid"):
        ViewServer("<p>x</p>", port=70000)


def test_serve_blocks_until_interrupted(directional_model: HSModel, tmp_path: Path) -> None:
    """serve() as a user runs it: its own process, stopped by Ctrl-C (SIGINT) in bounded time."""
    model_dir = tmp_path / "model"
    directional_model.to_disk(model_dir)
    script = textwrap.dedent(
        f"""
        import spacy
        from spacy_hs import HSModel, serve
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("hs_predictor").set_model(HSModel.from_disk({str(model_dir)!r}))
        serve(nlp("The president of the united states."), port=0)
        """
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        # Ctrl-C's default action, as in a terminal: a background job of a non-interactive
        # shell (a CI run with `&`) starts with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        url = _wait_for_url(process, timeout=60)
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as response:
            assert b'class="hs-token' in response.read()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)  # bounded, and generous on a busy machine
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert b"Stopped serving" in output


def _wait_for_url(process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    seen = b""
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            seen += chunk
            match = re.search(rb"(http://[\d.]+:\d+/)", seen)
            if match:
                return match.group(1).decode()
        if process.poll() is not None:
            raise AssertionError(f"serve() exited early: {seen.decode(errors='replace')}")
        time.sleep(0.05)
    raise AssertionError(f"no URL within {timeout} s: {seen.decode(errors='replace')}")


# -- in a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module, with its performance (network) log on."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(f"selenium is not installed: {INSTALL}")
    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(f"Chromium and chromedriver are not installed: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, docs: list[Doc], tmp_path_factory: pytest.TempPathFactory):
    """The full page (with its CSP) written to disk and opened from there."""
    path = tmp_path_factory.mktemp("view") / "view.html"
    path.write_text(render(docs, page=True), encoding="utf8")
    browser.get_log("performance")  # start the log at this page
    browser.get(path.as_uri())
    return browser, path


def dom_tokens(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.hs-token'), t => ({"
        "text: t.textContent, rank: t.dataset.rank, logprob: t.dataset.logprob, "
        "entropy: t.dataset.entropy, status: t.dataset.status}));"
    )


def model_context(model: HSModel, doc: Doc, i: int) -> list[str]:
    normalizer = TokenNormalizer(model.settings["normalizer"])
    words = [normalizer.norm(t) for t in doc[doc[i].sent.start : i]]
    return [w for w in words if w is not None and w in model]


def test_browser_dom_against_the_model(page, docs: list[Doc], directional_model: HSModel) -> None:
    driver, _ = page
    tokens = dom_tokens(driver)
    all_tokens = [t for doc in docs for t in doc]
    assert len(tokens) == len(all_tokens)
    model = directional_model
    normalizer = TokenNormalizer(model.settings["normalizer"])
    n_ranked = 0
    for dom, token in zip(tokens, all_tokens):
        assert dom["text"] == token.text
        log_prob = token._.hs_logprob
        assert (dom["status"] == SCORED) == (log_prob is not None)
        if log_prob is None:
            assert dom["rank"] == "" and dom["logprob"] == ""
            continue
        word, context = normalizer.norm(token), model_context(model, token.doc, token.i)
        expected = model.log_prob_next(word, context, head="directional")
        assert float(dom["logprob"]) == pytest.approx(expected, abs=6e-5)
        if n_ranked < 20:  # exact rank by the best-first search: top r ends with the word
            rank = int(dom["rank"])
            top = [w for w, _ in model.predict_next(context, top_k=rank, head="directional")]
            assert top[-1] == word and word not in top[:-1]
            n_ranked += 1
        if n_ranked == 1:  # exact entropy over the whole vocabulary
            probs = [p for _, p in model.predict_next(context, len(model), "directional")]
            entropy = -sum(p * math.log2(p) for p in probs if p > 0)
            assert float(dom["entropy"]) == pytest.approx(entropy, abs=6e-4)
    assert n_ranked == 20


def test_browser_hover_and_focus_show_the_top_k(
    page, docs: list[Doc], directional_model: HSModel
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, _ = page
    elements = driver.find_elements(By.CSS_SELECTOR, ".hs-token")
    tooltip = driver.find_element(By.CSS_SELECTOR, ".hs-tooltip")
    assert not tooltip.is_displayed()
    doc = docs[0]
    hovered, focused = [t.i for t in doc if t._.hs_logprob is not None][2:4]
    for i in (hovered, focused):
        if i == hovered:
            ActionChains(driver).move_to_element(elements[i]).perform()
        else:
            driver.execute_script("arguments[0].focus();", elements[i])
            assert elements[i].get_attribute("tabindex") == "0"
            assert elements[i].get_attribute("aria-describedby") == tooltip.get_attribute("id")
        assert tooltip.is_displayed()
        words = [w.text for w in tooltip.find_elements(By.CSS_SELECTOR, ".hs-tip-word")]
        context = model_context(directional_model, doc, i)
        expected = directional_model.predict_next(context, 5, head="directional")
        assert words == [w for w, _ in expected]
        probs = [float(p.text) for p in tooltip.find_elements(By.CSS_SELECTOR, ".hs-tip-prob")]
        assert probs == pytest.approx([p for _, p in expected], rel=0.06, abs=1e-4)
        # The bars are drawn, relative to the most probable word.
        bars = [b.size["width"] for b in tooltip.find_elements(By.CSS_SELECTOR, ".hs-tip-bar")]
        assert bars[0] > 50
        assert [w / bars[0] for w in bars] == pytest.approx([p / probs[0] for p in probs], abs=0.05)
        text = " ".join(tooltip.text.split())
        assert f"rank {int(elements[i].get_attribute('data-rank')):,} of" in text
        assert "entropy of the whole prediction" in text and "bits" in text
    # An unscored token says why.
    dropped = next(t.i for t in doc if t.is_punct)
    ActionChains(driver).move_to_element(elements[dropped]).perform()
    assert "Dropped by the normaliser" in tooltip.text
    normalizer = TokenNormalizer(directional_model.settings["normalizer"])
    words = [normalizer.norm(t) for t in doc]
    oov = next(t for t, w in zip(doc, words) if w is not None and w not in directional_model)
    ActionChains(driver).move_to_element(elements[oov.i]).perform()
    text = " ".join(tooltip.text.split())
    vocab = f"{len(directional_model):,}"
    assert f"“{normalizer.norm(oov)}” is not one of the model's {vocab} words" in text


def test_browser_mode_switch_changes_the_colours(page) -> None:
    from selenium.webdriver.common.by import By

    driver, _ = page

    def colours() -> list[str]:
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('.hs-token'), "
            "t => getComputedStyle(t).backgroundColor);"
        )

    statuses = [t["status"] for t in dom_tokens(driver)]
    view = driver.find_element(By.CSS_SELECTOR, ".hs-view")
    assert view.get_attribute("data-mode") == "rank"
    by_rank = colours()
    driver.find_element(By.CSS_SELECTOR, '.hs-switch button[data-mode="surprisal"]').click()
    assert view.get_attribute("data-mode") == "surprisal"
    by_surprisal = colours()
    driver.find_element(By.CSS_SELECTOR, '.hs-switch button[data-mode="rank"]').click()
    assert colours() == by_rank
    scored = [i for i, s in enumerate(statuses) if s == SCORED]
    changed = [i for i in scored if by_rank[i] != by_surprisal[i]]
    assert len(changed) > 0.9 * len(scored)
    assert len(set(by_rank[i] for i in scored)) <= 4  # GLTR's four buckets
    assert len(set(by_surprisal[i] for i in scored)) > 10  # a continuous scale
    transparent = "rgba(0, 0, 0, 0)"
    for i, status in enumerate(statuses):  # unscored tokens are never coloured as predicted
        if status != SCORED:
            assert by_rank[i] == by_surprisal[i] == transparent


def test_browser_made_no_request_and_ran_no_injected_script(page) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    driver, path = page
    requests = [
        json.loads(entry["message"])["message"]
        for entry in driver.get_log("performance")
        if "Network.requestWillBeSent" in entry["message"]
    ]
    urls = {message["params"]["request"]["url"] for message in requests}
    assert urls == {path.as_uri()}, urls  # the page itself, nothing else
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018
    text = driver.execute_script("return document.querySelectorAll('.hs-doc')[2].textContent")
    assert ATTACK in text  # shown as the characters it is
    problems = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems  # no CSP violation, no script error


def test_browser_escaping_holds_without_the_policy(
    browser, injected_model: HSModel, tmp_path: Path
) -> None:
    """The fragment embedded in a bare page (no CSP): escaping alone keeps the attack and the
    injected prediction inert."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    nlp = make_nlp(injected_model)
    doc = nlp(f"The minister said {ATTACK} and left.")
    path = tmp_path / "fragment.html"
    # The injected word is among the first few predictions after "said" (13th with the Lee
    # text as the default normaliser has it): show enough of them.
    fragment = render(doc, options={"top_k": 50})
    path.write_text(f"<!DOCTYPE html><meta charset='utf-8'><body>{fragment}</body>", "utf8")
    browser.get(path.as_uri())
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018
    said = next(t.i for t in doc if t.text == "said")
    elements = browser.find_elements(By.CSS_SELECTOR, ".hs-token")
    ActionChains(browser).move_to_element(elements[said + 1]).perform()  # predicted after "said"
    words = [w.text for w in browser.find_elements(By.CSS_SELECTOR, ".hs-tooltip .hs-tip-word")]
    assert INJECTED_WORD in words
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018
    assert browser.execute_script("return document.querySelectorAll('svg[onload]').length") == 0
    assert ATTACK in browser.find_element(By.CSS_SELECTOR, ".hs-text").text
