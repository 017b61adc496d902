/**
 * The Lambda handlers with malformed and valid input: a clear 4xx or ValidationError and nothing
 * started for bad input or for a source or destination outside the allow-lists; idempotent starts for
 * repeated requests and re-delivered events, a new attempt for a re-delivered promotion that failed; the
 * steps refuse before any request, and their registry client refuses non-public addresses. Only the AWS
 * control plane (Step Functions) is faked; the handlers are the real middy-wrapped ones.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { handler as apiHandler, createApiHandler } from "../../../functions/api/handler.ts";
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
import { MAX_PROMOTION_ATTEMPTS } from "../../../shared/workflow/names.ts";
import { transferPolicy } from "../../../shared/workflow/policy.ts";
import { attemptName, executionArnFor, transferName } from "../../../shared/workflow/triggers.ts";
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

/** The allow-lists of the trigger tests: what their requests name, and no more. */
const POLICY = transferPolicy({
  sources: [
    "localhost:5000",
    "a.io",
    "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/*",
    "registry.example.com/team",
  ],
  destinations: [
    "registry.example.com/app",
    "x.io",
    "c.io",
    "444455556666.dkr.ecr.eu-west-1.amazonaws.com/prod",
    "mirror.example.com/team",
  ],
});

/** A registry stand-in on loopback that answers 404 to everything and counts what reaches it. */
async function countingServer() {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests: () => requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

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
    // the definitions pass exactly {request, executionName}; a person's request names only known keys
    [
      "resolve",
      (e) => resolveHandler(e, context),
      {
        request: { source: "r.io/a:v1", destination: "d.io/b", platform: ["linux/amd64"] },
        executionName: "x",
      },
      /request\.platform: unknown key/,
    ],
    [
      "enumerate",
      (e) => enumerateHandler(e, context),
      { request: { source: "r.io", destination: "d.io" }, executionName: "b", extra: 1 },
      /extra: unknown key \(known: request, executionName\)/,
    ],
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
    const handler = createApiHandler(() => ({
      executions,
      copyStateMachineArn: COPY_ARN,
      staging,
      policy: POLICY,
    }));
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
      // a misspelt key is refused, not ignored
      [
        JSON.stringify({ source: "a.io/b:v1", destination: "x.io/b", tag: ["v2"] }),
        /tag: unknown key \(known: source, destination, tags,/,
      ],
      [
        JSON.stringify({ source: "a.io/b:v1", destination: "x.io/b", options: { stepbytes: 1 } }),
        /options\.stepbytes: unknown key/,
      ],
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
    expect(again.body.status).toBe("RUNNING"); // the transfer found, as it stands
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
      policy: POLICY,
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
      policy: POLICY,
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
      handler: createScheduleHandler(() => ({ executions, bulkStateMachineArn: BULK_ARN, policy: POLICY })),
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
      [{ config: { ...config, exlude: ["x"] } }, /config\.exlude: unknown key \(known: source, destination,/],
      [{ config: { ...config, tags: { semvr: "^1" } } }, /config\.tags\.semvr: unknown key/],
      [{ config, extra: true }, /extra: unknown key \(known: name, time, config\)/],
    ] as const) {
      const err = await rejects(handler(e, context));
      expect(err.name).toBe("ValidationError");
      expect(err.message).toMatch(message);
    }
    expect(executions.started).toEqual([]);
  });
});

describe("allow-lists at the triggers: refused before anything starts", () => {
  const post = (body: unknown) => ({ httpMethod: "POST", path: "/transfers", body: JSON.stringify(body) });
  const parse = (r: { statusCode: number; body: string }) => ({
    status: r.statusCode,
    body: JSON.parse(r.body),
  });

  it("API: 400 naming the refused reference and the list that refused it; Step Functions gets nothing", async () => {
    const executions = fakeExecutions();
    const handler = createApiHandler(() => ({ executions, copyStateMachineArn: COPY_ARN, policy: POLICY }));
    const cases: [unknown, RegExp][] = [
      // a private image copied out
      [
        { source: "a.io/b:v1", destination: "evil.example/loot:v1" },
        /destination "evil\.example\/loot:v1" is not allowed: evil\.example\/loot matches no pattern of ALLOWED_DESTINATIONS \(deployment setting allowedDestinations\)/,
      ],
      // an outside image written over the deployment's own repositories
      [
        { source: "evil.example/malware:v1", destination: "registry.example.com/app:v1" },
        /source "evil\.example\/malware:v1" is not allowed: .*ALLOWED_SOURCES \(deployment setting allowedSources\)/,
      ],
      // loopback, link-local, private addresses named directly
      [{ source: "127.0.0.1:9001/x:v1", destination: "x.io/b" }, /source "127\.0\.0\.1:9001\/x:v1"/],
      [{ source: "169.254.169.254/latest:v1", destination: "x.io/b" }, /source "169\.254\.169\.254/],
      // a repository beside the allowed one, and a prefix that is not a path segment
      [{ source: "registry.example.com/other:v1", destination: "x.io/b" }, /ALLOWED_SOURCES/],
      [{ source: "registry.example.com/teamster:v1", destination: "x.io/b" }, /ALLOWED_SOURCES/],
      [{ source: "a.io/b:v1", destination: "registry.example.com/application:v1" }, /ALLOWED_DESTINATIONS/],
    ];
    for (const [body, message] of cases) {
      const r = parse(await handler(post(body), context));
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatch(message);
    }
    expect(executions.started).toEqual([]);
    // and what the lists allow goes through
    const ok = parse(
      await handler(post({ source: "registry.example.com/team/web:v1", destination: "x.io/b" }), context),
    );
    expect(ok.status).toBe(202);
    expect(executions.started).toHaveLength(1);
  });

  it("API from its environment fails closed: no ALLOWED_* variables, every copy refused", async () => {
    process.env.COPY_STATE_MACHINE_ARN = COPY_ARN;
    delete process.env.ALLOWED_SOURCES;
    delete process.env.ALLOWED_DESTINATIONS;
    const r = parse(
      await apiHandler(post({ source: "a.io/b:v1", destination: "x.io/b:v1" }) as never, context),
    );
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/ALLOWED_SOURCES is empty: this deployment allows no source/);
  });

  it("promotion: a push whose source or destination is refused throws ValidationError, starting nothing", async () => {
    const executions = fakeExecutions();
    const event = (repository: string) => ({
      source: "aws.ecr",
      "detail-type": "ECR Image Action",
      account: "111122223333",
      region: "eu-west-1",
      detail: {
        "action-type": "PUSH",
        result: "SUCCESS",
        "repository-name": repository,
        "image-digest": `sha256:${"c".repeat(64)}`,
        "image-tag": "v1",
      },
    });
    const promote = (destination: string) =>
      createEventHandler(() => ({
        executions,
        copyStateMachineArn: COPY_ARN,
        promotion: { destination },
        policy: POLICY,
      }));
    const notAllowedSource = await rejects(
      promote("444455556666.dkr.ecr.eu-west-1.amazonaws.com/prod")(event("secret/app"), context),
    );
    expect(notAllowedSource.name).toBe("ValidationError");
    expect(notAllowedSource.message).toMatch(
      /source "111122223333\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/secret\/app:v1@sha256:c+" is not allowed.*ALLOWED_SOURCES/,
    );
    const notAllowedDestination = await rejects(promote("evil.example/drop")(event("team/app"), context));
    expect(notAllowedDestination.name).toBe("ValidationError");
    expect(notAllowedDestination.message).toMatch(
      /destination "evil\.example\/drop\/team\/app:v1" is not allowed.*ALLOWED_DESTINATIONS/,
    );
    expect(executions.started).toEqual([]);
  });

  it("schedule: a migration whose source or destination the lists refuse throws ValidationError, starting nothing", async () => {
    const executions = fakeExecutions();
    const handler = createScheduleHandler(() => ({
      executions,
      bulkStateMachineArn: BULK_ARN,
      policy: POLICY,
    }));
    for (const [config, message] of [
      [
        { source: "evil.example/team", destination: "mirror.example.com/team" },
        /source "evil\.example\/team" is not allowed.*ALLOWED_SOURCES/,
      ],
      [
        { source: "registry.example.com/team", destination: "evil.example" },
        /destination "evil\.example" is not allowed.*ALLOWED_DESTINATIONS/,
      ],
      // same registry, a prefix no pattern reaches into
      [
        { source: "registry.example.com/other", destination: "mirror.example.com/team" },
        /source "registry\.example\.com\/other"/,
      ],
    ] as const) {
      const err = await rejects(handler({ name: "m", time: "2026-01-01T00:00:00Z", config }, context));
      expect(err.name).toBe("ValidationError");
      expect(err.message).toMatch(message);
    }
    expect(executions.started).toEqual([]);
    // a narrower location under an allowed prefix starts (Enumerate checks each repository)
    await handler({ config: { source: "registry.example.com/team/web", destination: "x.io" } }, context);
    expect(executions.started).toHaveLength(1);
  });
});

describe("promotion retries on re-delivery", () => {
  const event = {
    source: "aws.ecr",
    "detail-type": "ECR Image Action",
    account: "111122223333",
    region: "eu-west-1",
    detail: {
      "action-type": "PUSH",
      result: "SUCCESS",
      "repository-name": "team/app",
      "image-digest": `sha256:${"d".repeat(64)}`,
      "image-tag": "v2",
    },
  };
  const make = () => {
    const executions = fakeExecutions();
    const handler = createEventHandler(() => ({
      executions,
      copyStateMachineArn: COPY_ARN,
      promotion: { destination: "444455556666.dkr.ecr.eu-west-1.amazonaws.com/prod" },
      policy: POLICY,
    }));
    const finish = (name: string, status: string) =>
      executions.set(executionArnFor(COPY_ARN, name), { status });
    return { executions, handler, finish };
  };

  it("after a failed, timed-out or aborted attempt the next one starts; running or succeeded: nothing", async () => {
    const { executions, handler, finish } = make();
    const first = await handler(event, context);
    expect(first).toMatchObject({ started: true, attempt: 1 });
    const base = first.id!;
    expect(base).toMatch(/^p-[0-9a-f]{32}$/);

    expect(await handler(event, context)).toMatchObject({ started: false, status: "RUNNING", id: base });
    finish(base, "FAILED");
    expect(await handler(event, context)).toMatchObject({ started: true, attempt: 2, id: `${base}-r2` });
    finish(`${base}-r2`, "TIMED_OUT");
    expect(await handler(event, context)).toMatchObject({ started: true, attempt: 3, id: `${base}-r3` });
    finish(`${base}-r3`, "ABORTED");
    expect(await handler(event, context)).toMatchObject({ started: true, attempt: 4, id: `${base}-r4` });
    finish(`${base}-r4`, "PENDING_REDRIVE");
    expect(await handler(event, context)).toMatchObject({ started: false, status: "PENDING_REDRIVE" });
    finish(`${base}-r4`, "SUCCEEDED");
    const done = await handler(event, context);
    expect(done).toMatchObject({ started: false, duplicate: true, attempt: 4, status: "SUCCEEDED" });
    expect(executions.started.map((e) => e.name)).toEqual([base, `${base}-r2`, `${base}-r3`, `${base}-r4`]);
    // every attempt copies the same thing
    expect(new Set(executions.started.map((e) => JSON.stringify(e.input))).size).toBe(1);
  });

  it(`gives up after ${MAX_PROMOTION_ATTEMPTS} failed attempts with a clear error, starting nothing`, async () => {
    const probe = make();
    const base = (await probe.handler(event, context)).id!;
    const { executions, handler, finish } = make();
    for (let i = 1; i <= MAX_PROMOTION_ATTEMPTS; i++) finish(attemptName(base, i), "FAILED");
    const err = await rejects(handler(event, context));
    expect(err.name).toBe("PromotionAttemptsExhaustedError");
    expect(err.message).toContain(`all ${MAX_PROMOTION_ATTEMPTS} attempts`);
    expect(err.message).toContain(`${base}-r${MAX_PROMOTION_ATTEMPTS}`);
    expect(err.message).toMatch(/start the copy yourself/);
    expect(executions.started).toEqual([]);
  });
});

describe("steps refuse what the allow-lists refuse, before any request", () => {
  const job = (source: string, destination: string) => ({
    id: "t-1",
    prefix: "transfers/t-1/",
    source,
    destination,
    image: `${source} → ${destination}`,
    stepBytes: 1048576,
    directMaxBytes: 1024,
    concurrency: 2,
  });
  const blob = { digest: `sha256:${"a".repeat(64)}`, size: 10, mediaType: "application/octet-stream" };

  it("resolve, stage, upload, put-manifests and enumerate started directly: ValidationError, zero requests", async () => {
    const server = await countingServer();
    const loop = server.host;
    process.env.ALLOWED_SOURCES = JSON.stringify(["ghcr.io/team"]);
    process.env.ALLOWED_DESTINATIONS = JSON.stringify(["registry.example.com/mirror"]);
    try {
      const cases: [string, () => Promise<unknown>, RegExp][] = [
        [
          "resolve: source",
          () =>
            resolveHandler(
              {
                request: { source: `${loop}/app:v1`, destination: "registry.example.com/mirror/app:v1" },
                executionName: "x",
              },
              context,
            ),
          new RegExp(`source "${loop}/app:v1" is not allowed.*ALLOWED_SOURCES`),
        ],
        [
          "resolve: destination",
          () =>
            resolveHandler(
              {
                request: { source: "ghcr.io/team/app:v1", destination: `${loop}/app:v1` },
                executionName: "x",
              },
              context,
            ),
          new RegExp(`destination "${loop}/app:v1" is not allowed.*ALLOWED_DESTINATIONS`),
        ],
        [
          "stage-blob: source",
          () =>
            stageHandler(
              {
                job: job(`${loop}/app`, "registry.example.com/mirror/app"),
                blob: { ...blob, mode: "staged" },
                stage: { offset: 0, done: false },
              },
              context,
            ),
          /ALLOWED_SOURCES/,
        ],
        [
          "upload-blob direct: source",
          () =>
            uploadHandler(
              {
                action: "direct",
                job: job(`${loop}/app`, "registry.example.com/mirror/app"),
                blob: { ...blob, mode: "direct" },
              },
              context,
            ),
          /ALLOWED_SOURCES/,
        ],
        [
          "upload-blob mount: source",
          () =>
            uploadHandler(
              {
                action: "mount",
                job: job("registry.example.com/private", "registry.example.com/mirror/app"),
                blob: { ...blob, mode: "mount" },
              },
              context,
            ),
          /source "registry\.example\.com\/private" is not allowed/,
        ],
        [
          "upload-blob upload: destination",
          () =>
            uploadHandler(
              {
                action: "upload",
                job: job("ghcr.io/team/app", `${loop}/app`),
                blob: { ...blob, mode: "staged" },
                stage: { offset: 10, done: true, key: "transfers/t-1/data/x" },
                upload: { offset: 0, done: false },
              },
              context,
            ),
          /ALLOWED_DESTINATIONS/,
        ],
        [
          "put-manifests: destination",
          () => putManifestsHandler({ job: job("ghcr.io/team/app", `${loop}/app`) }, context),
          /ALLOWED_DESTINATIONS/,
        ],
        [
          "enumerate: source",
          () =>
            enumerateHandler(
              { request: { source: loop, destination: "registry.example.com/mirror" }, executionName: "b" },
              context,
            ),
          new RegExp(`source "${loop}" is not allowed`),
        ],
      ];
      for (const [name, call, message] of cases) {
        const err = await rejects(call());
        expect(err.name, name).toBe("ValidationError");
        expect(err.message, name).toMatch(message);
      }
      expect(server.requests()).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("a deployed step fails closed: without ALLOWED_* every reference is refused", async () => {
    delete process.env.ALLOWED_SOURCES;
    delete process.env.ALLOWED_DESTINATIONS;
    const err = await rejects(
      resolveHandler(
        { request: { source: "ghcr.io/team/app:v1", destination: "ghcr.io/team/b:v1" }, executionName: "x" },
        context,
      ),
    );
    expect(err.name).toBe("ValidationError");
    expect(err.message).toMatch(/ALLOWED_SOURCES is empty/);
    process.env.ALLOWED_SOURCES = '{"not": "a list"}';
    resetStepDeps();
    const bad = await rejects(
      resolveHandler(
        { request: { source: "ghcr.io/team/app:v1", destination: "ghcr.io/team/b:v1" }, executionName: "x" },
        context,
      ),
    );
    expect(bad.name).toBe("ConfigError");
    expect(bad.message).toMatch(/ALLOWED_SOURCES must be a JSON array/);
  });

  it("the steps' registry client refuses a loopback registry unless PRIVATE_REGISTRIES declares it", async () => {
    const server = await countingServer();
    process.env.ALLOWED_SOURCES = JSON.stringify([server.host]);
    process.env.ALLOWED_DESTINATIONS = JSON.stringify([server.host]);
    const event = {
      request: { source: `${server.host}/app:v1`, destination: `${server.host}/copy:v1` },
      executionName: "x",
    };
    try {
      const err = await rejects(resolveHandler(event, context));
      expect(err.name).toBe("AddressNotAllowedError");
      expect(err.message).toMatch(/refusing to connect to 127\.0\.0\.1: a loopback address/);
      expect(server.requests()).toBe(0);

      // Declared private: the same step reaches it (and fails on the stand-in's 404, not on the policy).
      process.env.PRIVATE_REGISTRIES = JSON.stringify([server.host]);
      resetStepDeps();
      const reached = await rejects(resolveHandler(event, context));
      expect(reached.name).not.toBe("AddressNotAllowedError");
      expect(server.requests()).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });
});
