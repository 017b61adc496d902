/**
 * The replay section of the HTML report (html.ts): the schedule (starts, late starts and p99 lateness per
 * second), bytes per second over every operation, and the object popularity the trace had next to what
 * was sent (GETs per object by rank, both axes logarithmic), with the size distributions. The charts are
 * drawn once the page (and uPlot, inlined after this section) has loaded.
 */
import { esc, scriptJson } from "./html-parts.ts";
import type { ReplayReport, SizeSummary } from "./replay-report.ts";
import { formatBytes } from "./replay-report.ts";
import { type BenchReport, formatMs } from "./report.ts";

export function replaySection(r: ReplayReport, series: BenchReport["series"]): string {
  const seconds = series.seconds.length;
  const total = new Array<number>(seconds).fill(0);
  for (const op of Object.values(series.requests))
    op.bytes.forEach((b, i) => {
      total[i]! += b;
    });
  const data = {
    seconds: series.seconds,
    coverage: series.coverage,
    started: r.timing.series.started,
    late: r.timing.series.late,
    p99: r.timing.series.p99,
    bytes: total,
    trace: r.distributions.popularity.trace.curve,
    sent: r.distributions.popularity.sent.curve,
  };
  const t = r.trace;
  const m = r.timing;
  const size = (x: SizeSummary) =>
    `<td>${x.count}</td><td>${formatBytes(x.p50)}</td><td>${formatBytes(x.p90)}</td><td>${formatBytes(x.p99)}</td><td>${formatBytes(x.max)}</td>`;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const p = r.distributions.popularity;
  return `<h2>Trace replay</h2>
<p>${t.used} of ${t.read} records (${t.gets} GET, ${t.puts} PUT) from ${esc(t.files.join(", "))}; ${t.spanSeconds.toFixed(1)} s recorded;
${t.clients} client(s) → ${t.pools} connection pool(s) (${esc(t.clientsBy)}); ${t.objects} object(s).
Skipped: ${
    Object.entries(t.skipped)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${esc(k)} ${n}`)
      .join(", ") || "none"
  }${t.limited ? `; ${t.limited} beyond the limit` : ""}.</p>
<p>${
    m.mode === "max-rate"
      ? "--max-rate: each client's requests back to back (no schedule)."
      : `${m.speed}× the recorded pace over ${m.scheduledSeconds.toFixed(1)} s: <b>${m.onTimeShare === null ? "-" : pct(m.onTimeShare)}</b> of ${m.started} requests started on time (within ${m.toleranceMs} ms); lateness p50 ${formatMs(m.lateness?.p50)}, p99 ${formatMs(m.lateness?.p99)}, max ${formatMs(m.lateness?.max)}.`
  }
Seeding (not in these figures): ${r.seeding.objects} objects, ${r.seeding.fromState} from --state, ${r.seeding.present} present, ${r.seeding.pushed} pushed.</p>
<h3>Schedule: starts and late starts per second, p99 lateness</h3><div id="rp-sched" class="chart"></div>
<h3>Bytes per second, every operation (MB/s)</h3><div id="rp-bytes" class="chart"></div>
<h3>Object popularity: GETs per object by rank (trace vs sent)</h3><div id="rp-pop" class="chart"></div>
<p>Top 1% of objects: ${pct(p.trace.top1)} of the trace's GETs, ${pct(p.sent.top1)} sent; top 10%: ${pct(p.trace.top10)} / ${pct(p.sent.top10)}.</p>
<table><thead><tr><th>sizes</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>
<tr><td>trace (every record)</td>${size(r.distributions.sizes.trace)}</tr>
<tr><td>sent (completed GETs and PUTs)</td>${size(r.distributions.sizes.sent)}</tr></tbody></table>
<script id="replay-data" type="application/json">${scriptJson(data)}</script>
<script>
window.addEventListener("DOMContentLoaded", function () {
  var R = JSON.parse(document.getElementById("replay-data").textContent);
  var w = Math.min(1150, document.body.clientWidth - 10);
  var rate = function (a) { return a.map(function (v, i) { var c = R.coverage[i]; return c >= 0.2 ? v / c : null; }); };
  function plot(id, series, data, scales, axes) {
    var el = document.getElementById(id);
    if (!data[0].length) { el.textContent = "(nothing to chart)"; return; }
    new uPlot({ width: w, height: 240, scales: scales, axes: axes,
      series: [{ label: "x" }].concat(series) }, data, el);
  }
  plot("rp-sched", [
    { label: "started/s", stroke: "#1f77b4", scale: "n" },
    { label: "late/s", stroke: "#d62728", scale: "n" },
    { label: "p99 lateness (ms)", stroke: "#ff7f0e", scale: "ms" }],
    [R.seconds, rate(R.started), rate(R.late), R.p99],
    { x: { time: false }, n: {}, ms: {} },
    [{ label: "seconds" }, { scale: "n", label: "requests/s" }, { scale: "ms", side: 1, label: "ms", grid: { show: false } }]);
  plot("rp-bytes", [{ label: "MB/s", stroke: "#2ca02c" }],
    [R.seconds, rate(R.bytes).map(function (b) { return b === null ? null : b / 1e6; })],
    { x: { time: false } }, [{ label: "seconds" }, { label: "MB/s" }]);
  var ranks = [], seen = {};
  R.trace.concat(R.sent).forEach(function (p) { if (!seen[p[0]]) { seen[p[0]] = 1; ranks.push(p[0]); } });
  ranks.sort(function (a, b) { return a - b; });
  var at = function (curve) { var m = {}; curve.forEach(function (p) { m[p[0]] = p[1]; }); return ranks.map(function (k) { return m[k] > 0 ? m[k] : null; }); };
  plot("rp-pop", [{ label: "trace", stroke: "#1f77b4" }, { label: "sent", stroke: "#d62728", dash: [5, 5] }],
    [ranks, at(R.trace), at(R.sent)],
    { x: { time: false, distr: 3 }, y: { distr: 3 } }, [{ label: "object rank" }, { label: "GETs" }]);
});
</script>`;
}
