/**
 * `ferry bench compare --html`: the comparison table, and per operation the two runs' p99 latency and
 * throughput over time on one chart each (run a solid, run b dashed). One self-contained page, as html.ts.
 */
import { type Comparison, direction } from "./compare.ts";
import { esc, scriptJson, uplotAssets } from "./html-parts.ts";
import type { BenchReport } from "./report.ts";

export function renderComparisonHtml(c: Comparison, a: BenchReport, b: BenchReport): string {
  const { js, css } = uplotAssets();
  const rows = c.ops
    .map((op) => {
      const head = `<tr class="op"><td colspan="5">${esc(op.group)} ${esc(op.name)}</td></tr>`;
      return (
        head +
        op.values
          .map((v) => {
            const d = direction(v);
            const fmt = (x: number | null) =>
              x === null ? "-" : Number.isInteger(x) ? String(x) : x.toPrecision(4);
            return `<tr><td>${esc(v.metric)}</td><td>${fmt(v.a)}</td><td>${fmt(v.b)}</td><td>${
              v.relative === null ? fmt(v.diff) : `${(v.relative * 100).toFixed(1)}%`
            }</td><td class="${d === "better" ? "ok" : d === "worse" ? "bad" : ""}">${esc(v.verdict)}${d ? ` (${d})` : ""}</td></tr>`;
          })
          .join("\n")
      );
    })
    .join("\n");
  const series = (r: BenchReport) => ({
    seconds: r.series.seconds,
    coverage: r.series.coverage,
    ops: Object.fromEntries(
      [
        ...Object.entries(r.series.iterations).map(([k, v]) => [`iteration ${k}`, v] as const),
        ...Object.entries(r.series.requests),
      ].map(([k, v]) => [k, { p99: v.p99, count: v.count }]),
    ),
  });
  const title = `ferry bench compare: ${c.a.scenario}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>${css.replace(/<\/style/gi, "<\\/style")}</style>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse} td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left} tr.op td{font-weight:600;background:#f6f6f6}
.bad{color:#b00020;font-weight:600} .ok{color:#2e7d32;font-weight:600} .meta{color:#555}
</style></head><body>
<h1>${esc(title)}</h1>
<div class="meta">a: ${esc(c.a.file)} — ${esc(c.a.target)}, ${esc(c.a.modelText)}, ${esc(c.a.startedAt)}</div>
<div class="meta">b: ${esc(c.b.file)} — ${esc(c.b.target)}, ${esc(c.b.modelText)}, ${esc(c.b.startedAt)}</div>
${c.differences.length ? `<p>Differences: ${esc(c.differences.join("; "))}</p>` : ""}
<h2>Over time <select id="op"></select></h2>
<h3>p99 latency (ms)</h3><div id="lat"></div><h3>Throughput (ops/s)</h3><div id="tput"></div>
<h2>Side by side</h2>
<table><thead><tr><th></th><th>a</th><th>b</th><th>change</th><th>noise</th></tr></thead><tbody>
${rows}
</tbody></table>
<p class="meta">Beyond noise: the difference exceeds 1.96 standard errors of the runs' batch means (each run cut into up to 10 stretches of whole seconds).</p>
<script>${js.replace(/<\/script/gi, "<\\/script")}</script>
<script id="data" type="application/json">${scriptJson({ a: series(a), b: series(b) })}</script>
<script>
(function () {
  var D = JSON.parse(document.getElementById("data").textContent);
  var names = Object.keys(D.a.ops).filter(function (k) { return D.b.ops[k]; });
  var sel = document.getElementById("op");
  names.forEach(function (n) { var o = document.createElement("option"); o.value = n; o.textContent = n; sel.appendChild(o); });
  var len = Math.max(D.a.seconds.length, D.b.seconds.length);
  var xs = Array.from({ length: len }, function (_, i) { return i; });
  var pad = function (arr) { return xs.map(function (i) { return i < arr.length ? arr[i] : null; }); };
  var rate = function (run, arr) { return pad(arr.map(function (v, i) { var c = run.coverage[i]; return c >= 0.2 ? v / c : null; })); };
  function chart(id, a, b, label) {
    var el = document.getElementById(id); el.innerHTML = "";
    new uPlot({ width: Math.min(1150, document.body.clientWidth - 10), height: 240, scales: { x: { time: false } },
      axes: [{ label: "seconds" }, { label: label }],
      series: [{ label: "s" }, { label: "a", stroke: "#1f77b4" }, { label: "b", stroke: "#d62728", dash: [6, 4] }] },
      [xs, a, b], el);
  }
  function draw() {
    var n = sel.value; if (!n) return;
    chart("lat", pad(D.a.ops[n].p99), pad(D.b.ops[n].p99), "ms");
    chart("tput", rate(D.a, D.a.ops[n].count), rate(D.b, D.b.ops[n].count), "ops/s");
  }
  sel.addEventListener("change", draw); draw();
  document.body.setAttribute("data-rendered", "true");
})();
</script>
</body></html>
`;
}
