// The question page: asks POST /answer and draws the answer and its citation cards.
// All article text enters the page as text nodes (append/textContent), never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("ask");
  const input = $("q");
  const statusLine = $("status");
  const result = $("result");
  const answerBox = $("answer");
  const cards = $("citations");
  const FILTERS = ["date_from", "date_to", "source"];

  // An element with attributes and children; strings become text nodes, so they are never parsed as HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  // `text` starts at offset `base` of its article; each level wraps its ranges (article offsets) in an
  // element, and inner levels are drawn inside outer ones, so a date can sit inside the answer's <mark>.
  function paint(text, base, levels) {
    const frag = document.createDocumentFragment();
    if (!levels.length) {
      frag.append(text);
      return frag;
    }
    const [level, ...inner] = levels;
    const end = base + text.length;
    const pieces = level.ranges
      .map((r) => [Math.max(r.start, base), Math.min(r.end, end), r])
      .filter(([s, e]) => s < e)
      .sort((a, b) => a[0] - b[0]);
    let pos = base;
    for (const [s, e, r] of pieces) {
      if (s < pos) continue;
      if (s > pos) frag.append(paint(text.slice(pos - base, s - base), pos, inner));
      const wrap = level.make(r);
      wrap.append(paint(text.slice(s - base, e - base), s, inner));
      frag.append(wrap);
      pos = e;
    }
    if (pos < end) frag.append(paint(text.slice(pos - base), pos, inner));
    return frag;
  }

  const mark = () => el("mark");
  const dateTag = (d) => el("time", { datetime: d.resolved, title: `${d.resolved}${d.approximate ? " (approximate)" : ""}` });

  // The answer span in article offsets, or null when there is none (the whole sentence is then marked).
  function spanRange(answer) {
    const span = answer.span;
    if (!span || !span.text) return null;
    if (answer.text.slice(span.start - answer.start, span.end - answer.start) === span.text) {
      return { start: span.start, end: span.end };
    }
    const at = answer.text.indexOf(span.text);
    return at < 0 ? null : { start: answer.start + at, end: answer.start + at + span.text.length };
  }

  function articleHref(id, start, end) {
    return `/articles/${encodeURIComponent(id)}?start=${start}&end=${end}#hl`;
  }

  function drawAnswer(body) {
    const answer = body.answer;
    if (!answer) {
      const reason = (body.no_answer && body.no_answer.reason) || "no passage answers it";
      answerBox.replaceChildren(el("div", { class: "no-answer", id: "no-answer" },
        el("h3", {}, "Not in the articles"),
        el("p", {}, "No stored article answers this question (", reason, ")."),
        el("p", {}, body.passages.length ? "The nearest passages are below; they do not answer it."
                                         : "No passage matched the question and filters.")));
      return;
    }
    const span = spanRange(answer);
    const whole = { start: answer.start, end: answer.end };
    const dates = answer.dates || [];
    const sentence = el("p", { class: "answer-text" },
      paint(answer.text, answer.start, [
        { ranges: [span || whole], make: mark },
        { ranges: dates, make: dateTag },
      ]));
    const passage = body.passages.find((p) => p.citation === answer.citation) || {};
    const cite = el("a", { href: `#cite-${answer.citation}`, class: "cite" }, `[${answer.citation}]`);
    const parts = [el("p", { class: "label" }, "Answer ", cite)];
    if (span) parts.push(el("p", { class: "short" }, answer.text.slice(span.start - answer.start, span.end - answer.start)));
    parts.push(sentence);
    if (dates.length) {
      parts.push(el("ul", { class: "dates", "aria-label": "Dates in the answer" }, ...dates.map((d) =>
        el("li", {}, `“${d.text}” → `, el("time", { datetime: d.resolved }, d.resolved),
          d.approximate ? " (approximate)" : ""))));
    }
    const hl = span || whole;
    parts.push(el("p", { class: "from" }, "From ",
      el("a", { href: articleHref(answer.article_id, hl.start, hl.end) }, passage.title || answer.article_id),
      passage.date ? ", " : "", passage.date ? el("time", { datetime: passage.date }, passage.date) : "",
      passage.source ? `, ${passage.source}` : ""));
    answerBox.replaceChildren(el("div", { class: "answer-card", id: "answer-card" }, ...parts));
  }

  function drawCards(body) {
    const answer = body.answer;
    const span = answer && spanRange(answer);
    const groups = new Map();
    for (const p of body.passages) {
      if (!groups.has(p.citation)) groups.set(p.citation, []);
      groups.get(p.citation).push(p);
    }
    const items = [];
    for (const [n, passages] of groups) {
      const first = passages[0];
      const holds = answer && answer.article_id === first.article_id;
      const meta = [first.date ? el("time", { datetime: first.date }, first.date) : "undated"];
      if (first.source) meta.push(" · ", first.source);
      const also = alsoReported(first.also_in || []);
      const blocks = passages.map((p) => {
        const hasAnswer = holds && p.start <= answer.start && answer.end <= p.end;
        const levels = hasAnswer
          ? [{ ranges: [answer], make: () => el("span", { class: "sentence" }) },
             { ranges: [span || answer], make: mark }]
          : [];
        const hl = hasAnswer ? (span || answer) : p;
        const quote = el("blockquote", { class: "passage" }, paint(p.text, p.start, levels));
        const open = el("a", { href: articleHref(p.article_id, hl.start, hl.end), class: "open" },
          hasAnswer ? "Open the article at the answer" : "Open the article at this passage");
        return el("div", { class: "passage-block" }, quote, el("p", { class: "open-line" }, open,
          el("span", { class: "chars" }, ` characters ${hl.start}–${hl.end}`)));
      });
      items.push(el("li", { class: holds ? "card holds-answer" : "card", id: `cite-${n}` },
        el("span", { class: "num", "aria-label": `citation ${n}` }, String(n)),
        el("div", { class: "card-body" },
          el("h4", {}, el("a", { href: `/articles/${encodeURIComponent(first.article_id)}` }, first.title || first.article_id)),
          el("p", { class: "meta" }, ...meta),
          ...also,
          ...blocks)));
    }
    cards.replaceChildren(...items);
    $("passages-heading").hidden = !items.length;
    // Scroll each passage box so its highlight is in view without moving the page.
    for (const m of cards.querySelectorAll("blockquote mark")) {
      const box = m.closest("blockquote");
      box.scrollTop = Math.max(0, m.offsetTop - box.clientHeight / 3);
    }
  }

  // "Also reported by": the story's other outlets (reprints the search grouped under this card).
  function alsoReported(others) {
    if (!others.length) return [];
    const line = el("p", { class: "also-in" }, "Also reported by ");
    others.forEach((o, i) => {
      if (i) line.append(i === others.length - 1 ? " and " : ", ");
      line.append(el("a", { href: `/articles/${encodeURIComponent(o.article_id)}` }, o.source || o.article_id));
      if (o.date) line.append(" (", el("time", { datetime: o.date }, o.date), ")");
    });
    line.append(".");
    return [line];
  }

  // `dedupe` lives in the address only when it is off (every copy shown).
  function readForm() {
    const query = { q: input.value.trim() };
    for (const name of FILTERS) query[name] = $(name).value;
    query.dedupe = $("dedupe").checked ? "" : "off";
    return query;
  }

  function fillForm(query) {
    input.value = query.q || "";
    for (const name of FILTERS) $(name).value = query[name] || "";
    $("dedupe").checked = query.dedupe !== "off";
  }

  function queryFromUrl() {
    const params = new URLSearchParams(location.search);
    const query = { q: params.get("q") || "" };
    for (const name of FILTERS) query[name] = params.get(name) || "";
    query.dedupe = params.get("dedupe") === "off" ? "off" : "";
    return query;
  }

  function urlFor(query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value) params.set(name, value);
    return `?${params}`;
  }

  // This server wants a read key: ask for it and keep it in a cookie, which links to articles carry too.
  function askForKey(message, retry) {
    const keyInput = el("input", { type: "password", id: "read-key", autocomplete: "off", required: "" });
    const keyForm = el("form", { class: "key-form" },
      el("label", { for: "read-key" }, `${message}. Read key: `), keyInput, el("button", { type: "submit" }, "Use key"));
    keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      document.cookie = `newsrag_read_key=${encodeURIComponent(keyInput.value.trim())}; path=/; SameSite=Strict`;
      retry();
    });
    statusLine.className = "status error";
    statusLine.replaceChildren(keyForm);
    keyInput.focus();
  }

  let asked = 0;
  async function ask(query) {
    if (!query.q) return;
    const mine = ++asked;
    const filters = {};
    for (const name of FILTERS) if (query[name]) filters[name] = query[name];
    const request = { question: query.q, k: 5 };
    if (Object.keys(filters).length) request.filters = filters;
    if (query.dedupe === "off") request.dedupe = false;
    statusLine.className = "status";
    statusLine.textContent = "Searching the archive…";
    form.setAttribute("aria-busy", "true");
    try {
      const response = await fetch("/answer", {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(request),
      });
      const body = await response.json();
      if (mine !== asked) return;
      if (response.status === 401 || response.status === 403) {
        askForKey(body.error.message, () => { loadFilterChoices(); ask(query); });
        return;
      }
      if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      result.hidden = false;  // before drawing, so the passage boxes have a layout to scroll
      drawAnswer(body);
      drawCards(body);
      const ms = body.timings_ms && body.timings_ms.total;
      statusLine.textContent = `${body.answer ? "Answer found" : "Not in the articles"}; ` +
        `${new Set(body.passages.map((p) => p.citation)).size} sources` + (ms ? ` (${Math.round(ms)} ms).` : ".");
    } catch (err) {
      if (mine !== asked) return;
      statusLine.className = "status error";
      statusLine.textContent = `Could not answer: ${err.message}`;
    } finally {
      if (mine === asked) form.removeAttribute("aria-busy");
    }
  }

  async function loadFilterChoices() {
    try {
      const response = await fetch("/filters", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      const select = $("source");
      const wanted = queryFromUrl().source;
      for (const s of body.sources) select.append(el("option", { value: s.name }, `${s.name} (${s.articles})`));
      if (wanted) select.value = wanted;
      const range = body.date_range;
      if (range.from && range.to) $("range").textContent = `The articles run from ${range.from} to ${range.to}.`;
    } catch (_) {
      // the filters still work as free input without the choices
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = readForm();
    if (!query.q) return;
    const url = urlFor(query);
    if (url !== location.search) history.pushState(query, "", url);
    ask(query);
  });

  window.addEventListener("popstate", () => {
    const query = queryFromUrl();
    fillForm(query);
    ask(query);
  });

  // Flipping the grouping asks again at once when there is a question.
  $("dedupe").addEventListener("change", () => {
    if (input.value.trim()) form.requestSubmit();
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest && event.target.closest("input, select, textarea");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      input.focus();
      input.select();
    }
  });

  loadFilterChoices();
  const initial = queryFromUrl();
  fillForm(initial);
  ask(initial);
})();
