/**
 * The Lambda handlers with malformed and valid input: a clear 4xx or ValidationError and nothing
 * started for bad input; idempotent starts for repeated requests and re-delivered events. Only the AWS
 * control plane (Step Functions) is faked; the handlers are the real middy-wrapped ones.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createApiHandler } from "../../../functions/api/handler.ts";
import { handler as cleanupHandler } from "../../../functions/cleanup/handler.ts";
import { handler as enumerateHandler } from "../../../functions/enumerate/handler.ts";
import { createEventHandler } from "../../../functions/event/handler.ts";
import { resetStepDeps } from "../../../functions/lib/runtime.ts";
import { handler as putManifestsHandler } from "../../../functions/put-manifests/handler.ts";
import { handler as resolveHandler } from "../../../functions/resolve/handler.ts";
import { createScheduleHandler } from "../../../functions/schedule/handler.ts";
import { handler as stageHandler } from "../../../functions/stage-blob/handler.ts";
import { handler as summarizeHandler } from "../../../functions/summarize/handler.ts";
import { handler as uploadHandler } from "../../../functions/upload-blob/handler.ts";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import { putJson } from "../../../shared/staging/types.ts";
import { reportKey, transferPrefix } from "../../../shared/workflow/keys.ts";
import { executionArnFor, transferName } from "../../../shared/workflow/triggers.ts";
import { BULK_ARN, COPY_ARN, context, fakeExecutions } from "./fakes.ts";

// Before the handlers (and their Logger) are imported: no log lines in the test output.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
});
const saved = { ...process.env };
beforeEach(() => {
  process.env.STAGING_BUCKET = "ferry-test-staging";
  process.env.AWS_REGION = "eu-west-1";
  resetStepDeps();
});
afterEach(() => {
  process.env = { ...saved };
  resetStepDeps();
});

const job = {
  id: "t-1",
  prefix: "transfers/t-1/",
  source: "registry.example.com/app",
  destination: "other.example.com/app",
  image: "registry.example.com/app:v1 → other.example.com/app:v1",
  stepBytes: 1048576,
  directMaxBytes: 1024,
  concurrency: 2,
};
const blob = {
  digest: `sha256:${"a".repeat(64)}`,
  size: 10,
  mediaType: "application/octet-stream",
  mode: "direct",
};

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

describe("step handlers reject malformed events with a ValidationError naming the field", () => {
  const cases: [string, (e: unknown) => Promise<unknown>, unknown, RegExp][] = [
    [
      "resolve",
      (e) => resolveHandler(e, context),
      { request: { source: "x" } },
      /request\.destination|executionName/,
    ],
    [
      "resolve",
      (e) => resolveHandler(e, context),
      { request: { source: "Bad Ref!", destination: "a/b" }, executionName: "x" },
      /source/,
    ],
    [
      "resolve",
      (e) => resolveHandler(e, context),
      { request: { source: "host.io/app", destination: "h.io/b" }, executionName: "x" },
      /tag or a digest/,
    ],
    [
      "stage-blob",
      (e) => stageHandler(e, context),
      { job, blob, stage: { offset: -1, done: false } },
      /stage\.offset/,
    ],
    [
      "stage-blob",
      (e) => stageHandler(e, context),
      { job: { ...job, prefix: "../etc/" }, blob, stage: { offset: 0, done: false } },
      /job\.prefix/,
    ],
    ["upload-blob", (e) => uploadHandler(e, context), { action: "teleport", job, blob }, /action/],
    [
      "upload-blob",
      (e) => uploadHandler(e, context),
      { action: "direct", job, blob: { ...blob, digest: "md5:abc" } },
      /blob\.digest/,
    ],
    ["put-manifests", (e) => putManifestsHandler(e, context), {}, /job/],
    ["cleanup", (e) => cleanupHandler(e, context), { action: "success" }, /job/],
    [
      "enumerate",
      (e) => enumerateHandler(e, context),
      { request: { source: "r.io", destination: "d.io", include: ["("] }, executionName: "b" },
      /include/,
    ],
    ["summarize", (e) => summarizeHandler(e, context), { state: { job: { id: "x" } } }, /state\.job/],
  ];
  for (const [name, call, event, message] of cases) {
    it(`${name}: ${JSON.stringify(event).slice(0, 70)}`, async () => {
      const err = await rejects(call(event));
      expect(err.name).toBe("ValidationError");
      expect(err.message).toMatch(message);
    });
  }

  it("a missing STAGING_BUCKET is a configuration error, not a crash", async () => {
    delete process.env.STAGING_BUCKET;
    const err = await rejects(stageHandler({ job, blob, stage: { offset: 0, done: false } }, context));
    expect(err.message).toMatch(/STAGING_BUCKET/);
  });
});

describe("API handler", () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-api-"));
  const staging = new FsStagingStore(dir);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const make = () => {
    const executions = fakeExecutions();
    const handler = createApiHandler(() => ({ executions, copyStateMachineArn: COPY_ARN, staging }));
    return { executions, handler };
  };
  const post = (body: string | undefined, extra: object = {}) => ({
    httpMethod: "POST",
    path: "/transfers",
    body,
    ...extra,
  });
  const parse = (r: { statusCode: number; body: string }) => ({
    status: r.statusCode,
    body: JSON.parse(r.body),
  });

  it("refuses malformed bodies with 400 and a message, starting nothing", async () => {
    const { executions, handler } = make();
    const bad: [string | undefined, RegExp][] = [
      [undefined, /must be JSON/],
      ["{not json", /must be JSON/],
      ["[]", /invalid transfer request/],
      [JSON.stringify({ source: "localhost:5000/app:v1" }), /destination/],
      [JSON.stringify({ source: "localhost:5000/app", destination: "x.io/b" }), /tag or a digest/],
      [JSON.stringify({ source: "host.io/Bad_Repo!:v1", destination: "x.io/b" }), /source/],
      [JSON.stringify({ source: "a.io/b:v1", destination: "x.io/b@sha256:" + "0".repeat(64) }), /digest/],
      [JSON.stringify({ source: "a.io/b:v1", destination: "x.io/b", tags: ["-bad"] }), /tags/],
      [
        JSON.stringify({ source: "a.io/b:v1", destination: "x.io/b", options: { stepBytes: -5 } }),
        /options\.stepBytes/,
      ],
      [JSON.stringify({ source: "a.io/b:v1", destination: "x.io/b", platforms: ["linux"] }), /platforms/],
    ];
    for (const [body, message] of bad) {
      const r = parse(await handler(post(body), context));
      expect(r.status, String(body)).toBe(400);
      expect(r.body.error).toMatch(message);
    }
    expect(parse(await handler(post("x".repeat(70_000)), context)).status).toBe(413);
    expect(executions.started).toEqual([]);
  });

  it("starts one execution per request: duplicates get the same id", async () => {
    const { executions, handler } = make();
    const request = { source: "localhost:5000/app:v1", destination: "registry.example.com/app:v1" };
    const first = parse(await handler(post(JSON.stringify(request)), context));
    expect(first.status).toBe(202);
    expect(first.body.id).toMatch(/^t-[0-9a-f]{32}$/);
    expect(first.body.created).toBe(true);
    // the same request, spelled differently (key order, base64 body, HTTP API v2 event)
    const again = parse(
      await handler(
        {
          requestContext: { http: { method: "POST", path: "/prod/transfers" } },
          rawPath: "/prod/transfers",
          isBase64Encoded: true,
          body: Buffer.from(
            JSON.stringify({ destination: request.destination, source: request.source }),
          ).toString("base64"),
        },
        context,
      ),
    );
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.created).toBe(false);
    expect(executions.started).toHaveLength(1);
    expect(executions.started[0]).toMatchObject({
      stateMachineArn: COPY_ARN,
      name: first.body.id,
      input: request,
    });
    // a requestId makes it a new transfer
    const third = parse(await handler(post(JSON.stringify({ ...request, requestId: "again-1" })), context));
    expect(third.body.id).not.toBe(first.body.id);
    expect(executions.started).toHaveLength(2);
  });

  it("GET /transfers/{id}: status and the per-blob report; 404 unknown; 400 malformed id; 405 other methods", async () => {
    const { executions, handler } = make();
    const id = transferName({ source: "a.io/b:v1", destination: "c.io/d:v1" });
    executions.set(executionArnFor(COPY_ARN, id), {
      status: "SUCCEEDED",
      startDate: "2026-01-01T00:00:00.000Z",
      output: JSON.stringify({ digest: "sha256:x" }),
    });
    await putJson(staging, reportKey(transferPrefix(id)), {
      status: "SUCCEEDED",
      blobs: [{ digest: "sha256:y", action: "copied" }],
    });
    const ok = parse(
      await handler({ httpMethod: "GET", path: `/transfers/${id}`, pathParameters: { id } }, context),
    );
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      id,
      status: "SUCCEEDED",
      output: { digest: "sha256:x" },
      report: { blobs: [{ action: "copied" }] },
    });
    expect(parse(await handler({ httpMethod: "GET", path: "/transfers/t-unknown" }, context)).status).toBe(
      404,
    );
    expect(parse(await handler({ httpMethod: "GET", path: "/transfers/bad%20id" }, context)).status).toBe(
      400,
    );
    expect(parse(await handler({ httpMethod: "DELETE", path: `/transfers/${id}` }, context)).status).toBe(
      405,
    );
    expect(parse(await handler({ httpMethod: "GET", path: "/elsewhere" }, context)).status).toBe(404);
  });

  it("a Step Functions failure is a 500 with a message, not a crash", async () => {
    const handler = createApiHandler(() => ({
      executions: {
        start: async () => {
          throw new Error("AccessDenied");
        },
        describe: async () => undefined,
      },
      copyStateMachineArn: COPY_ARN,
    }));
    const r = parse(
      await handler(post(JSON.stringify({ source: "a.io/b:v1", destination: "c.io/d" })), context),
    );
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/internal error/);
  });
});

describe("EventBridge ECR push handler", () => {
  const event = (detail: Record<string, unknown> = {}, top: Record<string, unknown> = {}) => ({
    version: "0",
    id: "e-1",
    source: "aws.ecr",
    "detail-type": "ECR Image Action",
    account: "111122223333",
    region: "eu-west-1",
    time: "2026-01-01T00:00:00Z",
    detail: {
      "action-type": "PUSH",
      result: "SUCCESS",
      "repository-name": "team/app",
      "image-digest": `sha256:${"b".repeat(64)}`,
      "image-tag": "release-1.2",
      ...detail,
    },
    ...top,
  });
  const make = () => {
    const executions = fakeExecutions();
    const handler = createEventHandler(() => ({
      executions,
      copyStateMachineArn: COPY_ARN,
      promotion: {
        destination: "444455556666.dkr.ecr.eu-west-1.amazonaws.com/prod",
        repositoryFilter: "team/.*",
        tagFilter: "release-.*",
      },
    }));
    return { executions, handler };
  };

  it("promotes a matching push once, however often the event is delivered", async () => {
    const { executions, handler } = make();
    const first = await handler(event(), context);
    expect(first).toMatchObject({ started: true, duplicate: false });
    expect(executions.started[0]!.input).toEqual({
      source: `111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/app:release-1.2@sha256:${"b".repeat(64)}`,
      destination: "444455556666.dkr.ecr.eu-west-1.amazonaws.com/prod/team/app:release-1.2",
      tags: ["release-1.2"],
    });
    const again = await handler(event({}, { id: "e-2-redelivered" }), context);
    expect(again).toMatchObject({ started: false, duplicate: true, id: first.id });
    expect(executions.started).toHaveLength(1);
  });

  it("ignores pushes outside the filters, failed pushes, deletes and untagged pushes", async () => {
    const { executions, handler } = make();
    for (const [detail, reason] of [
      [{ "repository-name": "other/app" }, /REPOSITORY_FILTER/],
      [{ "image-tag": "dev-1" }, /TAG_FILTER/],
      [{ "image-tag": "xrelease-1" }, /TAG_FILTER/],
      [{ result: "FAILURE" }, /result/],
      [{ "action-type": "DELETE" }, /action-type/],
      [{ "image-tag": undefined }, /without a tag/],
    ] as const) {
      const r = await handler(event(detail), context);
      expect(r.started).toBe(false);
      expect(r.ignored).toMatch(reason);
    }
    expect(executions.started).toEqual([]);
  });

  it("throws ValidationError for malformed events, starting nothing", async () => {
    const { executions, handler } = make();
    for (const [e, message] of [
      [{}, /source/],
      [event({}, { source: "aws.s3" }), /source must be aws\.ecr/],
      [event({}, { account: "12" }), /account/],
      [event({ "repository-name": undefined }), /repository-name/],
      [event({ "image-digest": undefined }), /image-digest/],
      [event({ "image-digest": "sha256:short" }), /source/],
    ] as const) {
      const err = await rejects(handler(e, context));
      expect(err.name).toBe("ValidationError");
      expect(err.message).toMatch(message);
    }
    expect(executions.started).toEqual([]);
  });
});

describe("schedule handler", () => {
  const config = {
    source: "registry.example.com/team",
    destination: "mirror.example.com/team",
    tags: { latest: 3 },
  };
  const make = () => {
    const executions = fakeExecutions();
    return {
      executions,
      handler: createScheduleHandler(() => ({ executions, bulkStateMachineArn: BULK_ARN })),
    };
  };

  it("starts a bulk migration from the config in the event, once per scheduled time", async () => {
    const { executions, handler } = make();
    const a = await handler({ name: "nightly", time: "2026-01-01T00:00:00Z", config }, context);
    expect(a).toMatchObject({ started: true });
    expect(a.id).toMatch(/^nightly-[0-9a-f]{24}$/);
    const b = await handler(
      {
        "detail-type": "Scheduled Event",
        source: "aws.events",
        time: "2026-01-01T00:00:00Z",
        detail: { name: "nightly", config },
      },
      context,
    );
    expect(b).toMatchObject({ id: a.id, started: false });
    expect(executions.started).toHaveLength(1);
    expect(executions.started[0]).toMatchObject({ stateMachineArn: BULK_ARN, input: config });
  });

  it("refuses a malformed config, starting nothing", async () => {
    const { executions, handler } = make();
    for (const [e, message] of [
      [{}, /config/],
      [{ config: { source: "r.io" } }, /destination/],
      [{ config: { ...config, tags: { latest: 0 } } }, /tags\.latest/],
      [{ config: { ...config, toleratedFailurePercentage: 101 } }, /toleratedFailurePercentage/],
      [{ name: "no spaces allowed", config }, /name/],
    ] as const) {
      const err = await rejects(handler(e, context));
      expect(err.name).toBe("ValidationError");
      expect(err.message).toMatch(message);
    }
    expect(executions.started).toEqual([]);
  });
});
