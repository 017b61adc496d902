/**
 * What the copy workflow puts in Step Functions state: execution history and (when enabled) the state
 * machine's logs show every state's input and output, so the state must never carry a registry's upload
 * session — its Location names the session, and its query string (`_state` on the distribution registry,
 * signatures on others) lets whoever holds it write into the session. The test runs a staged, chunked
 * copy locally and inspects every event's input and output and every Task's input and result.
 */
import { afterAll, describe, expect, it } from "vitest";
import { formatReference } from "../../../shared/registry/reference.ts";
import { runCopyWorkflow } from "../../../shared/workflow/local-runner.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { fsDeps, MiB, pushSampleImage, removeTempDirs } from "./helpers.ts";

const regs = registries();
const anon = clientFor(regs.anon);
afterAll(async () => {
  removeTempDirs();
  await anon.close();
});

/** Every string inside a JSON value (keys included). */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value && typeof value === "object")
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out);
    }
  return out;
}

describe("workflow state carries no upload session", () => {
  it("no state input or output, no Task input or result holds a Location, its session id or its query", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("st-src"), tag: "v1" };
    await pushSampleImage(anon, src, { bigSize: 1 * MiB, platforms: 1 });
    // The upload session ids the registry handed out, as the client saw them (path of every PATCH).
    const sessions = new Set<string>();
    const client = clientFor(regs.token, {
      observer: (e) => {
        const m = /\/blobs\/uploads\/([^/?]+)/.exec(e.url);
        if (m && e.op.startsWith("upload")) sessions.add(m[1]!);
      },
    });
    const payloads: unknown[] = [];
    try {
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: `${regs.token.host}/${uniqueRepo("st-dst")}:v1` },
        {
          deps: fsDeps(client),
          retryIntervalMs: 1,
          onEvent: (e) => payloads.push(e),
          wrapStep: (state, step) => async (input) => {
            const result = await step(input);
            payloads.push({ state, input, result });
            return result;
          },
        },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
      payloads.push(r);
    } finally {
      await client.close();
    }
    // The copy went through chunked upload sessions (several steps of one blob), so there was something
    // to leak; and the upload steps ran and returned state.
    expect(sessions.size).toBeGreaterThan(0);
    const uploads = payloads.filter((p) => (p as { state?: string }).state === "UploadBlob");
    expect(uploads.length).toBeGreaterThanOrEqual(4); // 1 MiB in 256 KiB steps

    const all = strings(payloads);
    expect(all.length).toBeGreaterThan(100);
    const leaks = all.filter(
      (s) =>
        s.includes("_state") ||
        s.includes("/blobs/uploads/") ||
        /^https?:\/\//.test(s) ||
        [...sessions].some((id) => s.includes(id)),
    );
    expect(leaks).toEqual([]);
  });
});
