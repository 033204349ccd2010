// The spacy-hs surprisal view: mode switch, surprisal colours and tooltips. It reads only the
// page itself (data-* attributes and the JSON blocks), fetches nothing, and writes text with
// textContent only, so no token or prediction can become markup.
(function () {
  "use strict";

  function hexToRgb(hex) {
    return [1, 3, 5].map(function (i) { return parseInt(hex.slice(i, i + 2), 16); });
  }

  // Piecewise-linear in RGB between the stops, as the legend's SVG gradient is drawn.
  function scaleColor(stops, t) {
    var x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
    var i = Math.min(Math.floor(x), stops.length - 2);
    var f = x - i;
    var a = stops[i];
    var b = stops[i + 1];
    var rgb = a.map(function (v, c) { return Math.round(v + (b[c] - v) * f); });
    return "rgb(" + rgb.join(",") + ")";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatProb(p) {
    return p >= 0.01 ? p.toFixed(3) : p.toPrecision(2);
  }

  function formatInt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function init(view) {
    if (view.hasAttribute("data-hs-ready")) return;
    view.setAttribute("data-hs-ready", "");
    var config = JSON.parse(view.querySelector("script.hs-config").textContent);
    var stops = config.scale.map(hexToRgb);
    var tip = view.querySelector(".hs-tooltip");
    var current = null;

    view.querySelectorAll(".hs-doc").forEach(function (section) {
      var data = JSON.parse(section.querySelector("script.hs-data").textContent);
      section.querySelectorAll(".hs-token").forEach(function (token, i) {
        token.hsData = data;
        token.hsIndex = i;
        token.tabIndex = 0;
        var logProb = token.getAttribute("data-logprob");
        if (logProb) {
          var bits = -Number(logProb) / Math.LN2;
          token.style.setProperty("--hs-s", scaleColor(stops, bits / config.scaleMax));
        }
      });
    });

    var buttons = view.querySelectorAll(".hs-switch button");
    function setMode(mode) {
      view.setAttribute("data-mode", mode);
      buttons.forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.getAttribute("data-mode") === mode));
      });
    }
    buttons.forEach(function (button) {
      button.addEventListener("click", function () { setMode(button.getAttribute("data-mode")); });
    });
    setMode(view.getAttribute("data-mode"));

    function predictionRows(words, probs, actualIndex) {
      var rows = element("div", "hs-tip-bars");
      words.forEach(function (word, k) {
        var row = element("div", k === actualIndex ? "hs-tip-row hs-actual" : "hs-tip-row");
        row.appendChild(element("span", "hs-tip-word", word));
        var track = element("span", "hs-tip-track");
        var bar = element("span", "hs-tip-bar");
        bar.style.width = (100 * probs[k] / probs[0]).toFixed(1) + "%";  // relative to the best
        track.appendChild(bar);
        row.appendChild(track);
        row.appendChild(element("span", "hs-tip-prob", formatProb(probs[k])));
        rows.appendChild(row);
      });
      return rows;
    }

    function fill(token) {
      var status = token.getAttribute("data-status");
      var data = token.hsData;
      var i = token.hsIndex;
      var top = data.top[i];
      tip.textContent = "";
      var title = element("div", "hs-tip-title", token.textContent.trim() || "(whitespace)");
      title.appendChild(element("span", "hs-tip-status", config.statusLabels[status]));
      tip.appendChild(title);
      var rank = token.getAttribute("data-rank");
      if (status === "scored") {
        var logProb = Number(token.getAttribute("data-logprob"));
        tip.appendChild(element("div", "hs-tip-line",
          "rank " + formatInt(rank) + " of " + formatInt(data.vocab) +
          " · P = " + formatProb(Math.exp(logProb)) +
          " · surprisal " + (-logProb / Math.LN2).toFixed(2) + " bits"));
        var scoredAs = (data.scored_as || {})[String(i)];
        if (scoredAs) {
          tip.appendChild(element("div", "hs-tip-line", "scored as \u201c" + scoredAs + "\u201d"));
        }
      } else {
        var word = data.oov[String(i)] || "";
        var reason = config.reasons[status]
          .replace("{vocab}", formatInt(data.vocab))
          .replace("{word}", function () { return word; });
        tip.appendChild(element("div", "hs-tip-reason", reason));
      }
      var entropy = token.getAttribute("data-entropy");
      if (entropy) {
        tip.appendChild(element("div", "hs-tip-line",
          "entropy of the whole prediction: " + Number(entropy).toFixed(2) + " bits"));
      }
      if (top) {
        var k = top.length / 2;
        var words = top.slice(0, k).map(function (w) { return data.words[w]; });
        var actual = rank && Number(rank) <= k ? Number(rank) - 1 : -1;
        tip.appendChild(element("div", "hs-tip-caption",
          status === "scored" ? "Top " + k + " predictions here:" : "The model expected:"));
        tip.appendChild(predictionRows(words, top.slice(k), actual));
      }
    }

    function show(token) {
      if (current === token) return;
      current = token;
      fill(token);
      tip.hidden = false;
      token.setAttribute("aria-describedby", tip.id);
      var box = view.getBoundingClientRect();
      var rect = token.getBoundingClientRect();
      var left = Math.max(0, Math.min(rect.left - box.left, view.clientWidth - tip.offsetWidth));
      var top = rect.bottom - box.top + 6;
      var room = window.innerHeight - rect.bottom - 6;
      if (tip.offsetHeight > room && rect.top - 6 >= tip.offsetHeight) {
        top = rect.top - box.top - 6 - tip.offsetHeight;  // above the word: no room below
      }
      tip.style.left = left + "px";
      tip.style.top = top + "px";
    }

    function hide() {
      if (current) current.removeAttribute("aria-describedby");
      current = null;
      tip.hidden = true;
    }

    function tokenOf(node) {
      var token = node && node.closest ? node.closest(".hs-token") : null;
      return token && view.contains(token) ? token : null;
    }

    view.addEventListener("mouseover", function (event) {
      var token = tokenOf(event.target);
      if (token) show(token);
    });
    view.addEventListener("mouseout", function (event) {
      var token = tokenOf(event.target);
      if (token && tokenOf(event.relatedTarget) !== token && document.activeElement !== token) hide();
    });
    view.addEventListener("focusin", function (event) {
      var token = tokenOf(event.target);
      if (token) show(token);
    });
    view.addEventListener("focusout", hide);
    view.addEventListener("keydown", function (event) {
      if (event.key === "Escape") hide();
    });
  }

  document.querySelectorAll(".hs-view").forEach(init);
})();
