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
  // The charts need the series, op names and whole-run figures only; histograms stay in the JSON report.
  const whole = (ops: OpSummary[]) =>
    Object.fromEntries(
      ops.map((o) => [
        o.name,
        {
          rate: o.opsPerSec,
          mbps: o.bytesPerSec / 1e6,
          errs: r.durationMs > 0 ? o.failed / (r.durationMs / 1000) : 0,
          p50: o.latency?.p50 ?? null,
          p90: o.latency?.p90 ?? null,
          p99: o.latency?.p99 ?? null,
          max: o.latency?.max ?? null,
        },
      ]),
    );
  const data = {
    duration: r.durationMs / 1000,
    seconds: r.series.seconds,
    coverage: r.series.coverage,
    requests: r.series.requests,
    iterations: r.series.iterations,
    whole: { requests: whole(r.requests), iterations: whole(r.iterations.byKind) },
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
// Each second of the run is a step from its start to the next second (the last one to the run's end), so
// every chart spans the whole run, [0, duration]. Hovering shows that second's values in the legend; at
// rest the legend shows the whole run's (the tables' figures). Seconds after the end (iterations finishing
// in the grace period) are in the tables, not on the time axis.
(function () {
  var D = JSON.parse(document.getElementById("data").textContent);
  var palette = ["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
  var width = function () { return Math.min(1150, document.body.clientWidth - 10); };
  var fmt = function (v) {
    if (v === null || v === undefined || !isFinite(v)) return "no data";
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  };
  var dur = D.duration > 0 ? D.duration : 1;
  // the seconds inside the run: second i covers [i, min(i + 1, duration)]
  var inRun = D.seconds.filter(function (s) { return s < dur; });
  if (!inRun.length) inRun = [0];
  var all = [];
  Object.keys(D.iterations).forEach(function (k) { all.push({ label: "iteration " + k, s: D.iterations[k], w: D.whole.iterations[k] || {} }); });
  Object.keys(D.requests).forEach(function (k) { all.push({ label: k, s: D.requests[k], w: D.whole.requests[k] || {} }); });
  window.ferryCharts = {};
  // buckets: [start, covered seconds, [second indices]]; mergeTail: a last second under a fifth inside
  // the run joins the one before (a rate over 0.05 s is noise), so the rate line still reaches the end
  function buckets(mergeTail) {
    var b = inRun.map(function (s) { return { start: s, span: D.coverage[s], idx: [s] }; });
    var last = b[b.length - 1];
    if (mergeTail && b.length > 1 && last.span < 0.2) {
      b.pop();
      b[b.length - 1].span += last.span;
      b[b.length - 1].idx.push(last.start);
    }
    return b;
  }
  // series: [{label, values(bucket): number or null, whole: the whole run's value}]
  function chart(el, b, series, yLabel) {
    var holder = document.getElementById(el);
    holder.innerHTML = "";
    if (!series.length) { holder.textContent = "(nothing to chart)"; return; }
    // x: each bucket's start, then the run's end; a value repeats at the end to close the last step
    var xs = b.map(function (k) { return k.start; }).concat([dur]);
    var ys = series.map(function (s) {
      var v = b.map(function (k) { return s.values(k); });
      return v.concat([v[v.length - 1]]);
    });
    var bucketAt = function (x) {
      var i = 0;
      while (i + 1 < b.length && xs[i + 1] <= x) i++;
      return i;
    };
    var opts = {
      width: width(), height: 260,
      scales: { x: { time: false, range: function () { return [0, dur]; } } },
      axes: [{ label: "seconds" }, { label: yLabel }],
      // the legend names the second under the cursor (the step it falls in), not the nearest step start
      cursor: { dataIdx: function (u, si, closest, x) { return x === undefined || x === null ? closest : bucketAt(x); } },
      series: [{
        label: "s",
        value: function (u, v, si, idx) {
          return idx === null || idx === undefined ? "whole run" : +xs[idx].toFixed(2) + "–" + +xs[Math.min(idx + 1, b.length)].toFixed(2);
        },
      }].concat(series.map(function (s, i) {
        return {
          label: s.label, stroke: palette[i % palette.length], width: 1.5, spanGaps: false,
          paths: uPlot.paths.stepped({ align: 1 }), points: { show: false },
          value: function (u, v, si, idx) { return fmt(idx === null || idx === undefined ? s.whole : v); },
        };
      })),
      hooks: { ready: [function (u) { u.setLegend({ idx: null }); }] },
    };
    var u = new uPlot(opts, [xs].concat(ys), holder);
    window.ferryCharts[el] = u;
    return u;
  }
  var sel = document.getElementById("op");
  all.forEach(function (o, i) { var opt = document.createElement("option"); opt.value = i; opt.textContent = o.label; sel.appendChild(opt); });
  function drawLatency() {
    var o = all[Number(sel.value)];
    if (!o) { chart("lat", [], [], "ms"); return; }
    chart("lat", buckets(false), ["p50", "p90", "p99", "max"].map(function (p) {
      return { label: p, whole: o.w[p], values: function (k) { return o.s[p][k.start]; } };
    }), "ms");
  }
  sel.addEventListener("change", drawLatency);
  drawLatency();
  // counts per second → rates over the seconds each bucket covers
  var rate = function (arr, scale) {
    return function (k) {
      var n = 0;
      k.idx.forEach(function (i) { n += arr[i]; });
      return k.span > 0 ? n / k.span / scale : null;
    };
  };
  var rb = buckets(true);
  chart("tput", rb, all.map(function (o) { return { label: o.label, whole: o.w.rate, values: rate(o.s.count, 1) }; }), "ops/s");
  var withBytes = all.filter(function (o) { return o.s.bytes.some(function (b) { return b > 0; }); });
  chart("bytes", rb, withBytes.map(function (o) { return { label: o.label, whole: o.w.mbps, values: rate(o.s.bytes, 1e6) }; }), "MB/s");
  var withErr = all.filter(function (o) { return o.s.failed.some(function (b) { return b > 0; }); });
  if (withErr.length) chart("errs", rb, withErr.map(function (o) { return { label: o.label, whole: o.w.errs, values: rate(o.s.failed, 1) }; }), "errors/s");
  else document.getElementById("errs").textContent = "no errors";
  document.body.setAttribute("data-rendered", "true");
})();
</script>
</body></html>
`;
}
