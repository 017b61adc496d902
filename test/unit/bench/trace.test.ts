/**
 * Traces: the IBM-format reader (merge, sort, skip counts, limits, malformed input), the distribution log
 * converter, and the synthesiser's production shape. Pure functions over text: no registry, no clock.
 */
import { describe, expect, it } from "vitest";
import {
  assembleTrace,
  clientOf,
  formatIsoTime,
  parseIsoTime,
  parseTraceText,
  type RawTraceRecord,
} from "../../../load/trace.ts";
import {
  convertRequests,
  parseGoDuration,
  parseLogText,
  traceText,
  uploadStateOffset,
} from "../../../load/trace-convert.ts";
import { SYNTH_DEFAULTS, synthTrace } from "../../../load/trace-synth.ts";
import { FerryError } from "../../../shared/registry/errors.ts";

const rec = (over: Partial<RawTraceRecord> = {}): RawTraceRecord => ({
  "http.request.method": "GET",
  "http.request.uri": "v2/u1/app/blobs/sha256:aa",
  "http.response.written": 100,
  "http.request.duration": 0.01,
  "http.request.remoteaddr": "10.0.0.1:4000",
  "http.response.status": 200,
  timestamp: "2017-06-20T02:41:18.000Z",
  ...over,
});

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    expect((e as FerryError).code).toBe("USAGE");
    expect((e as Error).message).not.toContain("\n");
    return (e as Error).message;
  }
  throw new Error("expected a usage error");
}

describe("the trace reader (IBM format)", () => {
  it("merges unsorted files by time, offsets from the first record, and counts skipped records by reason", () => {
    const a = parseTraceText(
      "a.json",
      JSON.stringify([
        rec({ timestamp: "2017-06-20T02:41:20.500Z", "http.request.uri": "/v2/u1/app/manifests/v1?x=1" }),
        rec({ "http.request.method": "HEAD" }),
        rec({ "http.request.uri": "v2/u1/app/tags/list" }),
        rec({ timestamp: "2017-06-20T02:41:18.250Z" }),
      ]),
    );
    const b = parseTraceText(
      "b.json",
      JSON.stringify([
        rec({
          timestamp: "2017-06-20T02:41:19.000Z",
          "http.request.method": "PUT",
          "http.request.uri": "v2/u1/app/blobs/uploads/abc",
        }),
        rec({ "http.response.status": 404 }),
        rec({ "http.response.written": 0 }),
        rec({ "http.request.method": "GET", "http.request.uri": "v2/u1/app/blobs/uploads/abc" }),
      ]),
    );
    const t = assembleTrace(["a.json", "b.json"], [a, b]);
    expect(t.read).toBe(8);
    expect(t.skipped).toEqual({ method: 1, path: 2, status: 1, size: 1 });
    expect(t.records.map((r) => [r.at, r.method, r.kind])).toEqual([
      [0, "GET", "blob"],
      [750, "PUT", "blob"],
      [2250, "GET", "manifest"],
    ]);
    expect(t.records[2]!.uri).toBe("v2/u1/app/manifests/v1");
    expect(t.records[0]!.client).toBe("10.0.0.1");
    expect(t.spanMs).toBe(2250);
  });

  it("keeps sub-millisecond times, and limits by seconds or by records", () => {
    expect(parseIsoTime("2017-06-20T02:41:18.123456Z")! % 1000).toBeCloseTo(123.456, 3);
    expect(parseIsoTime("2017-06-20T04:41:18+02:00")).toBe(parseIsoTime("2017-06-20T02:41:18Z"));
    expect(formatIsoTime(parseIsoTime("2017-06-20T02:41:18.123456Z")!)).toBe("2017-06-20T02:41:18.123456Z");
    const records = [0, 1, 2, 3, 4].map((s) => rec({ timestamp: `2017-06-20T02:41:1${s}.000Z` }));
    const parsed = () => [parseTraceText("t.json", JSON.stringify(records))];
    expect(assembleTrace(["t"], parsed(), { limitSeconds: 2 }).records).toHaveLength(3);
    const byCount = assembleTrace(["t"], parsed(), { limitRequests: 2 });
    expect(byCount.records).toHaveLength(2);
    expect(byCount.limited).toBe(3);
    expect(byCount.fingerprint).toBe(assembleTrace(["t"], parsed(), { limitRequests: 2 }).fingerprint);
    expect(byCount.fingerprint).not.toBe(assembleTrace(["t"], parsed()).fingerprint);
    expect(clientOf("[::1]:443")).toBe("[::1]");
    expect(clientOf("client-0001")).toBe("client-0001");
  });

  it("refuses malformed traces with one error naming the file and the record", () => {
    expect(usage(() => parseTraceText("bad.json", '[{"a": 1},\n  {"b": }]'))).toMatch(
      /^trace bad\.json: not valid JSON/,
    );
    expect(usage(() => parseTraceText("cut.json", '[{"a": 1},\n  {"b": 2'))).toMatch(
      /^trace cut\.json: not valid JSON( at line 2, column \d+)?: /,
    );
    expect(usage(() => parseTraceText("obj.json", "{}"))).toBe(
      "trace obj.json: expected a JSON array of request records",
    );
    const { timestamp: _, ...noTime } = rec();
    expect(usage(() => parseTraceText("t.json", JSON.stringify([rec(), noTime])))).toBe(
      'trace t.json: record 2: missing "timestamp"',
    );
    expect(usage(() => parseTraceText("t.json", JSON.stringify([rec({ timestamp: "yesterday" })])))).toMatch(
      /^trace t\.json: record 1: "timestamp" is not an ISO 8601 time .* \(got "yesterday"\)$/,
    );
    expect(
      usage(() => parseTraceText("t.json", JSON.stringify([rec({ timestamp: "2017-02-30T00:00:00Z" })]))),
    ).toMatch(/record 1: "timestamp" is not/);
    expect(
      usage(() =>
        parseTraceText("t.json", JSON.stringify([rec({ "http.response.written": "12" as never })])),
      ),
    ).toBe('trace t.json: record 1: "http.response.written" must be a number');
    expect(usage(() => parseTraceText("t.json", JSON.stringify([rec(), 7])))).toBe(
      "trace t.json: record 2: expected an object, got 7",
    );
  });
});

/** distribution 2.8's JSON "response completed" line, as it writes it. */
function logLine(p: {
  method: string;
  uri: string;
  status: number;
  written: number;
  duration: string;
  time: string;
  remote?: string;
}) {
  return JSON.stringify({
    "go.version": "go1.19.8",
    "http.request.host": "127.0.0.1:5000",
    "http.request.method": p.method,
    "http.request.remoteaddr": p.remote ?? "127.0.0.1:50000",
    "http.request.uri": p.uri,
    "http.request.useragent": "ferry",
    "http.response.duration": p.duration,
    "http.response.status": p.status,
    "http.response.written": p.written,
    level: "info",
    msg: p.status >= 400 ? "response completed with error" : "response completed",
    time: p.time,
  });
}

const state = (offset: number) =>
  encodeURIComponent(
    Buffer.concat([
      Buffer.alloc(32, 7),
      Buffer.from(JSON.stringify({ Name: "app", UUID: "u", Offset: offset })),
    ]).toString("base64url"),
  );

describe("trace convert: distribution logs → trace", () => {
  it("reads Go durations", () => {
    expect(parseGoDuration("9.932623ms")).toBeCloseTo(0.009932623, 12);
    expect(parseGoDuration("896.091µs")).toBeCloseTo(0.000896091, 12);
    expect(parseGoDuration("1m2.5s")).toBe(62.5);
    expect(parseGoDuration("1h0m0s")).toBe(3600);
    expect(parseGoDuration("12")).toBeUndefined();
    expect(uploadStateOffset(`/v2/app/blobs/uploads/u?_state=${state(4096)}&digest=sha256:x`)).toBe(4096);
  });

  it("folds a push into one PUT record sized from a GET of the blob or the upload state, starts at time − duration", () => {
    const lines = [
      "not json at all",
      JSON.stringify({ level: "info", msg: "listening on 127.0.0.1:5000", time: "2026-01-01T00:00:00Z" }),
      logLine({
        method: "POST",
        uri: "/v2/app/blobs/uploads/",
        status: 202,
        written: 0,
        duration: "1ms",
        time: "2026-01-01T00:00:01.000Z",
      }),
      logLine({
        method: "PATCH",
        uri: `/v2/app/blobs/uploads/u1?_state=${state(0)}`,
        status: 202,
        written: 0,
        duration: "5ms",
        time: "2026-01-01T00:00:01.010Z",
      }),
      logLine({
        method: "PUT",
        uri: `/v2/app/blobs/uploads/u1?_state=${state(5000)}&digest=sha256:b1`,
        status: 201,
        written: 0,
        duration: "2ms",
        time: "2026-01-01T00:00:01.020Z",
      }),
      logLine({
        method: "POST",
        uri: "/v2/app/blobs/uploads/",
        status: 202,
        written: 0,
        duration: "1ms",
        time: "2026-01-01T00:00:02.000Z",
      }),
      logLine({
        method: "PUT",
        uri: `/v2/app/blobs/uploads/u2?_state=${state(0)}&digest=sha256:b2`,
        status: 201,
        written: 0,
        duration: "3ms",
        time: "2026-01-01T00:00:02.010Z",
      }),
      logLine({
        method: "GET",
        uri: "/v2/app/blobs/sha256:b2",
        status: 200,
        written: 777,
        duration: "1.5ms",
        time: "2026-01-01T00:00:03.000Z",
      }),
      logLine({
        method: "PUT",
        uri: `/v2/app/blobs/uploads/u3?_state=${state(0)}&digest=sha256:b3`,
        status: 201,
        written: 0,
        duration: "3ms",
        time: "2026-01-01T00:00:04.000Z",
      }),
      logLine({
        method: "HEAD",
        uri: "/v2/app/manifests/v1",
        status: 404,
        written: 91,
        duration: "1ms",
        time: "2026-01-01T00:00:05.000Z",
      }),
      '127.0.0.1 - - [01/Jan/2026:00:00:05 +0000] "HEAD /v2/app/manifests/v1 HTTP/1.1" 404 91 "" "ferry"',
    ];
    const { requests, other } = parseLogText("registry.log", lines.join("\n"));
    expect(requests).toHaveLength(8);
    expect(other).toBe(3); // the text line, the start-up message, and the access line (its request is the JSON one)
    const { records, summary } = convertRequests(requests, { keepNames: true });
    expect(summary).toMatchObject({ pushes: 3, folded: 3, unknownSize: 1, records: 5 });
    const puts = records.filter((r) => r["http.request.method"] === "PUT");
    expect(puts.map((r) => [r["http.request.uri"], r["http.response.written"]])).toEqual([
      ["v2/app/blobs/sha256:b1", 5000], // the PATCHes' bytes
      ["v2/app/blobs/sha256:b2", 777], // a GET of the blob tells
      ["v2/app/blobs/sha256:b3", 0], // nothing tells: the replay skips it
    ]);
    expect(puts[0]!.timestamp).toBe("2026-01-01T00:00:01.018000Z");
    // the result reads back as a trace
    const t = assembleTrace(["x"], [parseTraceText("x", traceText(records))]);
    expect(t.records.map((r) => `${r.method} ${r.kind} ${r.size}`)).toEqual([
      "PUT blob 5000",
      "PUT blob 777",
      "GET blob 777",
    ]);
    expect(t.skipped).toEqual({ method: 1, path: 0, status: 0, size: 1 });
  });

  it("anonymises by default: same object, same pseudonym; no name, reference or address left", () => {
    const lines = [
      logLine({
        method: "GET",
        uri: "/v2/team/secret-app/manifests/prod",
        status: 200,
        written: 500,
        duration: "1ms",
        time: "2026-01-01T00:00:01Z",
        remote: "192.0.2.7:1111",
      }),
      logLine({
        method: "GET",
        uri: "/v2/team/secret-app/manifests/prod",
        status: 200,
        written: 500,
        duration: "1ms",
        time: "2026-01-01T00:00:02Z",
        remote: "192.0.2.7:2222",
      }),
      logLine({
        method: "GET",
        uri: "/v2/team/secret-app/blobs/sha256:abcd",
        status: 200,
        written: 9,
        duration: "1ms",
        time: "2026-01-01T00:00:03Z",
        remote: "192.0.2.8:1111",
      }),
    ];
    const { records, summary } = convertRequests(parseLogText("l", lines.join("\n")).requests);
    expect(summary.anonymised).toBe(true);
    const text = JSON.stringify(records);
    for (const secret of ["team", "secret-app", "prod", "abcd", "192.0.2"])
      expect(text).not.toContain(secret);
    expect(records[0]!["http.request.uri"]).toBe(records[1]!["http.request.uri"]);
    expect(records[0]!["http.request.remoteaddr"]).toBe(records[1]!["http.request.remoteaddr"]);
    expect(records[2]!["http.request.remoteaddr"]).not.toBe(records[0]!["http.request.remoteaddr"]);
    expect(records[2]!["http.request.uri"]).toMatch(
      /^v2\/u[0-9a-f]{8}\/r[0-9a-f]{10}\/blobs\/sha256:[0-9a-f]{64}$/,
    );
  });

  it("reads access-log lines when that is all there is, and refuses a text-formatted log", () => {
    const access = [
      '127.0.0.1 - - [06/Dec/2026:03:46:44 +0000] "GET /v2/app/manifests/v1 HTTP/1.1" 200 527 "" "docker"',
      '10.1.1.1 - - [06/Dec/2026:03:46:45 +0000] "GET /v2/app/blobs/sha256:aa HTTP/1.1" 200 1024 "" "docker"',
    ].join("\n");
    const { records } = convertRequests(parseLogText("access.log", access).requests, { keepNames: true });
    expect(
      records.map((r) => [r.timestamp, r["http.request.remoteaddr"], r["http.response.written"]]),
    ).toEqual([
      ["2026-12-06T03:46:44.000000Z", "127.0.0.1", 527],
      ["2026-12-06T03:46:45.000000Z", "10.1.1.1", 1024],
    ]);
    const text = 'time="2026-12-06T03:46:44Z" level=info msg="response completed" http.request.method=GET';
    expect(usage(() => parseLogText("text.log", text))).toMatch(
      /^log text\.log: .*set the registry's log\.formatter to json/,
    );
    const broken = logLine({
      method: "GET",
      uri: "/v2/",
      status: 200,
      written: 2,
      duration: "soon",
      time: "2026-01-01T00:00:01Z",
    });
    expect(usage(() => parseLogText("b.log", `\n${broken}`))).toBe(
      'log b.log: line 2: "http.response.duration" is not a duration (got "soon")',
    );
  });
});

describe("trace synth: a production-shaped trace", () => {
  const opts = { ...SYNTH_DEFAULTS, requests: 3000, layerMedian: 64 * 1024 };
  const records = synthTrace(opts);
  const t = assembleTrace(["synth"], [parseTraceText("synth", traceText(records))]);

  it("is deterministic for a seed, and writes exactly the records asked for, all usable", () => {
    expect(synthTrace(opts)).toEqual(records);
    expect(synthTrace({ ...opts, seed: "other" })).not.toEqual(records);
    expect(t.records).toHaveLength(3000);
    expect(t.read).toBe(3000);
  });

  it("is GET-dominated with the PUT share asked for", () => {
    const puts = t.records.filter((r) => r.method === "PUT").length;
    expect(Math.abs(puts / 3000 - opts.putShare)).toBeLessThan(0.01);
  });

  it("has skewed popularity: the top 10% of manifests draw far more than 10% of manifest GETs", () => {
    const counts = new Map<string, number>();
    for (const r of t.records)
      if (r.method === "GET" && r.kind === "manifest") counts.set(r.uri, (counts.get(r.uri) ?? 0) + 1);
    const sorted = [...counts.values()].sort((a, b) => b - a);
    const top = sorted.slice(0, Math.ceil(sorted.length / 10)).reduce((a, n) => a + n, 0);
    expect(top / sorted.reduce((a, n) => a + n, 0)).toBeGreaterThan(0.3);
  });

  it("spreads layer sizes log-normally around the median, and follows the day-like cycle", () => {
    const sizes = t.records
      .filter((r) => r.kind === "blob")
      .map((r) => r.size)
      .sort((a, b) => a - b);
    const median = sizes[Math.floor(sizes.length / 2)]!;
    expect(median).toBeGreaterThan(opts.layerMedian / 2);
    expect(median).toBeLessThan(opts.layerMedian * 2);
    expect(sizes.at(-1)! / sizes[0]!).toBeGreaterThan(100); // orders of magnitude
    // one cycle starting at its quietest: the middle half of the span is busier than the outer half
    const span = opts.spanSeconds * 1000;
    const middle = t.records.filter((r) => r.at > span / 4 && r.at < (3 * span) / 4).length;
    expect(middle).toBeGreaterThan(t.records.length - middle);
  });
});
