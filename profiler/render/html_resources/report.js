
document.querySelectorAll("table.sortable th").forEach(function (th, _) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var rows = Array.prototype.slice.call(body.rows);
    var key = function (r) { var t = r.cells[col].textContent.trim(); var n = parseFloat(t.replace(/,/g, ""));
                             return isNaN(n) || !/^-?[\d.,]+$/.test(t) ? t.toLowerCase() : n; };
    rows.sort(function (a, b) { var x = key(a), y = key(b); var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                : (typeof x === "number" ? -1 : 1); return dir === "ascending" ? c : -c; });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
