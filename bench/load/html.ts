/**
 * The HTML report: ONE self-contained file (uPlot's JS and CSS inlined from node_modules, the report
 * data inlined as JSON) that opens in a browser with no network. Charts: latency percentiles over time
 * (per operation, selectable), throughput, bytes per second and errors per second.
 */
import { esc, scriptJson, uplotAssets } from "./html-parts.ts";
import { replaySection } from "./replay-html.ts";
import {
  type BenchReport,
  formatClient,
  formatMBps,
  formatMs,
  formatRate,
  type OpSummary,
} from "./report.ts";

function opTable(title: string, ops: OpSummary[]): string {
  if (!ops.length) return "";
  const rows = ops
    .map(
      (o) =>
        `<tr><td>${esc(o.name)}</td><td>${o.count}</td><td>${formatRate(o.opsPerSec)}</td>` +
        `<td class="${o.failed ? "bad" : ""}">${o.failed}</td><td>${formatMBps(o.bytesPerSec)}</td>` +
        `<td>${formatMs(o.latency?.p50)}</td><td>${formatMs(o.latency?.p90)}</td><td>${formatMs(o.latency?.p99)}</td>` +
        `<td>${formatMs(o.latency?.p999)}</td><td>${formatMs(o.latency?.max)}</td>` +
        `<td class="small">${esc(
          Object.entries(o.statuses)
            .map(([k, v]) => `${k}×${v}`)
            .join(" "),
        )}</td></tr>`,
    )
    .join("\n");
  return `<h2>${esc(title)}</h2><table><thead><tr><th></th><th>count</th><th>ops/s</th><th>errors</th><th>MB/s</th>
<th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>statuses</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function kv(m: Record<string, number | string>): string {
  const e = Object.entries(m);
  if (!e.length) return "<p>none</p>";
  return `<table><tbody>${e.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="l">${esc(String(v))}</td></tr>`).join("")}</tbody></table>`;
}

export function renderHtml(r: BenchReport): string {
  const { js, css } = uplotAssets();
  const where = `${r.target.registry}${r.scenario === "catalog" ? "" : `/${r.target.repository}`}`;
  const title = `ferry bench ${r.scenario} → ${where}`;
  // The charts need the series and op names only; histograms stay in the JSON report.
  const data = {
    seconds: r.series.seconds,
    coverage: r.series.coverage,
    requests: r.series.requests,
    iterations: r.series.iterations,
  };
  const v = r.verification;
  const created = r.created.length
    ? `<details><summary>${r.created.length} image(s) created${r.cleanup ? " (cleaned up)" : " — delete with --cleanup"}</summary>
<table><thead><tr><th>repository</th><th>tag</th><th>digest</th><th>blobs</th></tr></thead><tbody>
${r.created.map((c) => `<tr><td>${esc(c.repository)}</td><td>${esc(c.tag)}</td><td class="l mono">${esc(c.digest)}</td><td>${c.blobs.length}</td></tr>`).join("\n")}
</tbody></table></details>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${css.replace(/<\/style/gi, "<\\/style")}</style>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.meta{color:#555} table{border-collapse:collapse;margin:4px 0} td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child,td.l{text-align:left} .small{font-size:12px;color:#555;text-align:left} .mono{font-family:monospace;font-size:12px}
.bad{color:#b00020;font-weight:600} .chart{margin:8px 0 24px} .ok{color:#2e7d32}
select{font:inherit}
</style></head><body>
<h1>${esc(title)}</h1>
<div class="meta">${esc(r.modelText)} · ${(r.durationMs / 1000).toFixed(1)} s · started ${esc(r.startedAt)}${r.workers > 1 ? ` · ${r.workers} workers${r.viaWorkflow ? " (Step Functions fan-out)" : ""}` : ""}</div>
${r.images.length ? `<div class="meta">images: ${esc(r.images.join(", "))}</div>` : ""}
<p><b>${r.iterations.total}</b> iterations (${formatRate(r.iterations.perSec)}/s): ${r.iterations.ok} ok,
<span class="${r.iterations.failed ? "bad" : "ok"}">${r.iterations.failed} failed</span>${r.iterations.dropped ? `, ${r.iterations.dropped} dropped` : ""}${r.iterations.aborted ? `, ${r.iterations.aborted} aborted` : ""};
<b>${r.totals.requests}</b> requests, <span class="${r.totals.failedRequests ? "bad" : "ok"}">${r.totals.failedRequests} failed</span>; ${formatMBps(r.totals.bytesPerSec)} MB/s.</p>
${r.client ? `<p class="${r.client.saturated ? "bad" : "meta"}">${esc(formatClient(r.client)).replace("\n", "<br>")}</p>` : ""}
<h2>Latency over time (ms) <select id="op"></select></h2><div id="lat" class="chart"></div>
<h2>Throughput (ops/s)</h2><div id="tput" class="chart"></div>
<h2>Transfer (MB/s)</h2><div id="bytes" class="chart"></div>
<h2>Errors per second</h2><div id="errs" class="chart"></div>
${opTable("Iterations (whole iteration; open model: from the intended start)", r.iterations.byKind)}
${opTable("HTTP requests (to response headers)", r.requests)}
<h2>Errors</h2>
<h3>Failed requests by status</h3>${kv(r.errors.requests.byStatus)}
<h3>Failed requests by code</h3>${kv(r.errors.requests.byCode)}
<h3>Failed iterations by code</h3>${kv(r.errors.iterations.byCode)}
<h3>First message per code</h3>${kv(r.errors.samples)}
<h2>Correctness</h2>
<p>${v.verify ? `${v.blobsVerified} pulled blobs digest-verified, <span class="${v.verifyFailures ? "bad" : "ok"}">${v.verifyFailures} failed</span>` : "pulled blobs not verified (--no-verify)"}${
    v.readback
      ? `; read back by digest: ${v.readback.manifests} manifests, ${v.readback.blobs} blobs, <span class="${v.readback.failures ? "bad" : "ok"}">${v.readback.failures} failures</span>`
      : ""
  }${r.cleanup ? `; cleanup deleted ${r.cleanup.manifests} manifests, ${r.cleanup.blobs} blobs (${r.cleanup.failures} failures)` : ""}</p>
${created}
${r.replay ? replaySection(r.replay, r.series) : ""}
<details><summary>configuration</summary><pre class="mono">${esc(JSON.stringify(r.config, null, 2))}</pre></details>
<script>${js.replace(/<\/script/gi, "<\\/script")}</script>
<script id="data" type="application/json">${scriptJson(data)}</script>
<script>
(function () {
  var D = JSON.parse(document.getElementById("data").textContent);
  var palette = ["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
  var width = function () { return Math.min(1150, document.body.clientWidth - 10); };
  var all = [];
  Object.keys(D.iterations).forEach(function (k) { all.push({ label: "iteration " + k, s: D.iterations[k] }); });
  Object.keys(D.requests).forEach(function (k) { all.push({ label: k, s: D.requests[k] }); });
  function chart(el, series, data, yLabel) {
    var opts = {
      width: width(), height: 260,
      scales: { x: { time: false } },
      axes: [{ label: "seconds" }, { label: yLabel }],
      series: [{ label: "s" }].concat(series.map(function (s, i) {
        return { label: s, stroke: palette[i % palette.length], width: 1.5, spanGaps: false };
      })),
    };
    var holder = document.getElementById(el);
    holder.innerHTML = "";
    if (!series.length) { holder.textContent = "(nothing to chart)"; return; }
    return new uPlot(opts, [D.seconds].concat(data), holder);
  }
  var sel = document.getElementById("op");
  all.forEach(function (o, i) { var opt = document.createElement("option"); opt.value = i; opt.textContent = o.label; sel.appendChild(opt); });
  function drawLatency() {
    var o = all[Number(sel.value)];
    if (!o) { chart("lat", [], [], "ms"); return; }
    chart("lat", ["p50", "p90", "p99", "max"], [o.s.p50, o.s.p90, o.s.p99, o.s.max], "ms");
  }
  sel.addEventListener("change", drawLatency);
  drawLatency();
  // counts per second → rates; a last second with less than a fifth of its time inside the run is left out
  var perSec = function (a) {
    return a.map(function (v, i) { var c = D.coverage[i]; return c >= 0.2 ? v / c : null; });
  };
  chart("tput", all.map(function (o) { return o.label; }), all.map(function (o) { return perSec(o.s.count); }), "ops/s");
  var withBytes = all.filter(function (o) { return o.s.bytes.some(function (b) { return b > 0; }); });
  chart("bytes", withBytes.map(function (o) { return o.label; }), withBytes.map(function (o) { return perSec(o.s.bytes).map(function (b) { return b === null ? null : b / 1e6; }); }), "MB/s");
  var withErr = all.filter(function (o) { return o.s.failed.some(function (b) { return b > 0; }); });
  if (withErr.length) chart("errs", withErr.map(function (o) { return o.label; }), withErr.map(function (o) { return perSec(o.s.failed); }), "errors/s");
  else document.getElementById("errs").textContent = "no errors";
  document.body.setAttribute("data-rendered", "true");
})();
</script>
</body></html>
`;
}
