"""The page's inline CSS and its one script (click a column header to sort a table)."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSS", "SORT_JS", "csp"]

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
  max-width: 1100px; padding: 1.5rem; color: #1d1d1f; line-height: 1.45; background: #fff; }
header { border-bottom: 2px solid #4c78a8; margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem 0; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta { color: #555; margin: 0 0 .8rem 0; }
.big { font-size: 2rem; font-weight: bold; color: #4c78a8; margin: .2rem 0; }
table { border-collapse: collapse; font-size: .9rem; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f3f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fff4f4; }
td.text { max-width: 26rem; overflow-wrap: anywhere; }
figure { margin: 1rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .85rem; }
.scroll { overflow-x: auto; }
td.text { min-width: 12rem; }
td.name { min-width: 6rem; max-width: 13rem; overflow-wrap: break-word; }
th button { font: inherit; font-weight: bold; background: none; border: 0; padding: 0;
  cursor: pointer; color: inherit; text-align: left; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; }
dt { font-weight: bold; margin-top: .3rem; } dd { margin-left: 1.2rem; color: #444; }
.muted { color: #666; }
footer { margin-top: 2rem; color: #777; font-size: .8rem; border-top: 1px solid #ddd; }
@media print {
  th button::after { content: none; }
  body { max-width: none; padding: 0; }
  figure, table, tr { page-break-inside: avoid; break-inside: avoid; }
  h2 { page-break-after: avoid; break-after: avoid; }
}
"""


# Sorts a table.sortable by the clicked column: numbers by their data-v, text otherwise.
SORT_JS = """(function () {
  function key(cell) {
    var v = cell.getAttribute("data-v");
    return v === null ? cell.textContent : parseFloat(v);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    table.setAttribute("data-sortable", "ready");
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var c = (typeof x === "number" && typeof y === "number") ? x - y
            : String(x).localeCompare(String(y), undefined, {numeric: true});
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();"""


def csp() -> str:
    """Nothing from the network; inline styles; only the sorting script (by its hash) runs."""
    digest = base64.b64encode(hashlib.sha256(SORT_JS.encode("utf-8")).digest()).decode()
    return f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
