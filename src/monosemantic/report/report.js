// Features tables (filter, sort, page), card filters and table <-> card jumps. Data is read from JSON islands and
// written with textContent only, so no text from a run is ever parsed as HTML.
(function () {
  "use strict";
  var PAGE = 50;

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  function fmt(v, digits) { return v === null || v === undefined ? "\u2013" : v.toFixed(digits); }
  function pct(v) {
    if (v === null || v === undefined) return "\u2013";
    var p = 100 * v;
    return (p >= 10 ? p.toFixed(1) : p >= 1 ? p.toFixed(2) : p.toFixed(3)) + "%";
  }
  function numOrNull(input) {
    var s = input.value.trim();
    if (s === "") return null;
    var v = Number(s);
    return isFinite(v) ? v : null;
  }

  function FeatureTable(root) {
    var d = JSON.parse(root.querySelector(".f-data").textContent);
    var t = root.getAttribute("data-track");
    var n = d.id.length;
    var q = function (sel) { return root.querySelector(sel); };
    var tbody = q("tbody");
    var state = { col: "ms", dir: -1, page: 0, rows: [] };
    var maxMs = 0;
    for (var i = 0; i < n; i++) if (d.ms[i] !== null && d.ms[i] > maxMs) maxMs = d.ms[i];

    function key(col, i) {
      if (col === "set") return d.sets[d.set[i]];
      if (col === "label") return d.label[i] < 0 ? null : d.labels[d.label[i]];
      if (col === "name") return d.name ? d.name[i] : null;
      return d[col][i];
    }
    function compare(a, b) {
      var x = key(state.col, a), y = key(state.col, b);
      // Missing values (dead units) always sort last, whatever the direction.
      if (x === null || x === undefined) return (y === null || y === undefined) ? a - b : 1;
      if (y === null || y === undefined) return -1;
      if (x < y) return -state.dir;
      if (x > y) return state.dir;
      return a - b;
    }
    function matches(i, f) {
      if (f.set !== null && d.set[i] !== f.set) return false;
      if (f.label !== null && d.label[i] !== f.label) return false;
      if (f.card && !d.card[i]) return false;
      if (f.msMin !== null && !(d.ms[i] !== null && d.ms[i] >= f.msMin)) return false;
      if (f.msMax !== null && !(d.ms[i] !== null && d.ms[i] <= f.msMax)) return false;
      if (f.fmsMin !== null && !(d.fms[i] !== null && d.fms[i] >= f.fmsMin)) return false;
      if (f.frMin !== null && !(d.fr[i] !== null && d.fr[i] >= f.frMin)) return false;
      if (f.frMax !== null && !(d.fr[i] !== null && d.fr[i] <= f.frMax)) return false;
      if (f.activeMin !== null && !(d.active && d.active[i] !== null && d.active[i] >= f.activeMin)) return false;
      if (f.id !== null && String(d.id[i]) !== f.id) return false;
      // free text matches a unit set's id or, where the run has automated names, a latent's name
      if (f.setText !== null && d.sets[d.set[i]].toLowerCase().indexOf(f.setText) < 0 &&
          !(d.name && d.name[i] && d.name[i].toLowerCase().indexOf(f.setText) >= 0)) return false;
      return true;
    }
    function filters() {
      var search = q(".f-search").value.trim().toLowerCase(), id = null, setText = null;
      if (search !== "") {
        var cut = search.lastIndexOf(":");
        if (cut >= 0) { setText = search.slice(0, cut); id = search.slice(cut + 1) || null; }
        else if (/^#?\d+$/.test(search)) id = search.replace("#", "");
        else setText = search;
      }
      return {
        set: q(".f-set").value === "" ? null : Number(q(".f-set").value),
        label: q(".f-label").value === "" ? null : Number(q(".f-label").value),
        card: q(".f-card").checked, id: id, setText: setText,
        msMin: numOrNull(q(".f-ms-min")), msMax: numOrNull(q(".f-ms-max")), fmsMin: numOrNull(q(".f-fms-min")),
        frMin: numOrNull(q(".f-fr-min")), frMax: numOrNull(q(".f-fr-max")),
        activeMin: q(".f-active-min") ? numOrNull(q(".f-active-min")) : null
      };
    }
    function refilter() {
      var f = filters(), rows = [];
      for (var i = 0; i < n; i++) if (matches(i, f)) rows.push(i);
      rows.sort(compare);
      state.rows = rows;
      state.page = 0;
      draw();
    }
    function cell(tr, text, cls) { var td = el("td", cls, text); tr.appendChild(td); return td; }
    function draw() {
      var rows = state.rows, pages = Math.max(1, Math.ceil(rows.length / PAGE));
      if (state.page >= pages) state.page = pages - 1;
      var start = state.page * PAGE, stop = Math.min(rows.length, start + PAGE);
      var frag = document.createDocumentFragment();
      for (var r = start; r < stop; r++) {
        var i = rows[r], tr = el("tr");
        var first = cell(tr, null);
        var sw = el("span", "swatch"); sw.style.background = d.colors[d.set[i]];
        first.appendChild(sw); first.appendChild(document.createTextNode(d.sets[d.set[i]]));
        cell(tr, String(d.id[i]), "n");
        if (d.name) cell(tr, d.name[i] === null ? "\u2013" : d.name[i]);
        var ms = cell(tr, fmt(d.ms[i], 3), "n");
        if (d.ms[i] !== null && maxMs > 0) {
          var bar = el("span", "msbar"); bar.style.width = Math.max(1, 40 * d.ms[i] / maxMs) + "px";
          ms.appendChild(bar);
        }
        cell(tr, fmt(d.fms[i], 3), "n");
        cell(tr, pct(d.fr[i]), "n");
        if (d.active) cell(tr, d.active[i] === null ? "\u2013" : d.active[i].toLocaleString(), "n");
        cell(tr, d.label[i] < 0 ? "\u2013" : d.labels[d.label[i]]);
        cell(tr, fmt(d.corr[i], 2), "n");
        cell(tr, fmt(d.ent[i], 2), "n");
        var c = cell(tr, null);
        if (d.card[i]) {
          var a = el("a", null, "card \u2192");
          a.href = "#c" + t + "-" + d.set[i] + "-" + String(d.id[i]).replace(/[^A-Za-z0-9_-]/g, "_");
          c.appendChild(a);
        }
        frag.appendChild(tr);
      }
      tbody.replaceChildren(frag);
      q(".f-status").textContent = rows.length === 0 ? "no unit matches these filters" :
        "rows " + (start + 1).toLocaleString() + "\u2013" + stop.toLocaleString() + " of " +
        rows.length.toLocaleString() + (rows.length < n ? " (filtered from " + n.toLocaleString() + ")" : "");
      q(".f-prev").disabled = state.page === 0;
      q(".f-next").disabled = state.page >= pages - 1;
      root.querySelectorAll("th[data-col]").forEach(function (th) {
        var col = th.getAttribute("data-col");
        th.setAttribute("aria-sort", col === state.col ? (state.dir > 0 ? "ascending" : "descending") : "none");
      });
    }
    function sortBy(col) {
      if (state.col === col) state.dir = -state.dir;
      else { state.col = col; state.dir = (col === "set" || col === "label" || col === "id" || col === "name") ? 1 : -1; }
      state.rows.sort(compare);
      state.page = 0;
      draw();
    }
    root.querySelectorAll("th[data-col]").forEach(function (th) {
      th.addEventListener("click", function () { sortBy(th.getAttribute("data-col")); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th.getAttribute("data-col")); }
      });
    });
    root.querySelectorAll(".controls input, .controls select").forEach(function (inp) {
      inp.addEventListener("input", refilter);
    });
    q(".f-reset").addEventListener("click", function () {
      root.querySelectorAll(".controls input").forEach(function (inp) {
        if (inp.type === "checkbox") inp.checked = false; else inp.value = "";
      });
      root.querySelectorAll(".controls select").forEach(function (s) { s.value = ""; });
      refilter();
    });
    q(".f-prev").addEventListener("click", function () { state.page--; draw(); });
    q(".f-next").addEventListener("click", function () { state.page++; draw(); });
    refilter();
    return {
      find: function (setIndex, id) {
        q(".f-set").value = String(setIndex);
        q(".f-search").value = String(id);
        refilter();
      }
    };
  }

  var tables = {};
  document.querySelectorAll(".ftable").forEach(function (root) {
    tables[root.getAttribute("data-track")] = FeatureTable(root);
  });

  // Card filter chips: show one unit set's cards at a time.
  document.querySelectorAll(".chips").forEach(function (bar) {
    var t = bar.getAttribute("data-track");
    var grid = document.querySelector(".cards[data-track='" + t + "']");
    bar.addEventListener("click", function (e) {
      var chip = e.target.closest(".chip");
      if (!chip) return;
      bar.querySelectorAll(".chip").forEach(function (c) { c.classList.toggle("on", c === chip); });
      var set = chip.getAttribute("data-set");
      grid.querySelectorAll("article.card").forEach(function (card) {
        card.hidden = set !== "" && card.getAttribute("data-set") !== set;
      });
    });
  });

  // A jump to a card hidden by a chip filter first shows every card of that track again.
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!id) return;
    var card = document.getElementById(id);
    if (!card || !card.classList.contains("card")) return;
    if (card.hidden) {
      var grid = card.parentNode, bar = document.querySelector(".chips[data-track='" +
        grid.getAttribute("data-track") + "']");
      var all = bar && bar.querySelector(".chip[data-set='']");
      if (all) all.click();
      card.scrollIntoView();
    }
    document.querySelectorAll("article.card.flash").forEach(function (c) { c.classList.remove("flash"); });
    card.classList.add("flash");
  }
  window.addEventListener("hashchange", reveal);
  reveal();

  document.querySelectorAll("a.c-back").forEach(function (a) {
    a.addEventListener("click", function () {
      var t = a.closest(".cards").getAttribute("data-track");
      if (tables[t]) tables[t].find(a.getAttribute("data-set"), a.getAttribute("data-find"));
    });
  });

  document.body.setAttribute("data-page-height", String(document.documentElement.scrollHeight));
  document.body.setAttribute("data-ready", "1");
})();
