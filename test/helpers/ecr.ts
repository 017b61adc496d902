/**
 * A stand-in for Amazon ECR, in two parts, for the tests of repositories created on demand:
 *   - its control plane, enough for ferry: DescribeRepositories, CreateRepository and PutLifecyclePolicy
 *     over the service's JSON protocol (`POST /`, `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Op>`,
 *     errors as `{"__type", "message"}`); signatures are not checked. Point an SDK client at it with
 *     AWS_ENDPOINT_URL_ECR.
 *   - its one registry rule that matters here, as a fault-proxy script (test/helpers/fault-proxy.ts) in
 *     front of a real registry: a push (blob upload `POST`, manifest `PUT`) to a repository the control
 *     plane does not know is refused with `404 NAME_UNKNOWN` and ECR's message, as ECR refuses it; reads
 *     go through (a `HEAD` in a missing repository is a bodiless 404 at ECR too).
 * `events` records both in arrival order (`ecr:CreateRepository app`, `registry:POST app`), so a test can
 * tell what came first.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Fault, ProxiedRequest } from "./fault-proxy.ts";

export interface EcrRepositoryRecord {
  repositoryName: string;
  imageTagMutability?: string;
  imageScanningConfiguration?: { scanOnPush?: boolean };
  encryptionConfiguration?: { encryptionType?: string; kmsKey?: string };
  lifecyclePolicyText?: string;
}

export interface EcrStandIn {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Repositories by name (those given at start, and those created). */
  repositories: Map<string, EcrRepositoryRecord>;
  /** Every control-plane request: the operation and its JSON body. */
  requests: { op: string; body: Record<string, unknown> }[];
  /** Control-plane operations and registry pushes, in arrival order. */
  events: string[];
  /** Makes the next calls of `op` fail with this AWS error (`__type`) and status. */
  failNext(op: string, type: string, status?: number): void;
  /** The fault-proxy script that refuses pushes into unknown repositories (see above). */
  registryRule: (r: ProxiedRequest) => Fault;
  close(): Promise<void>;
}

const ACCOUNT = "123456789012";

export async function startEcrStandIn(existing: string[] = []): Promise<EcrStandIn> {
  const repositories = new Map<string, EcrRepositoryRecord>(existing.map((n) => [n, { repositoryName: n }]));
  const requests: EcrStandIn["requests"] = [];
  const events: string[] = [];
  const failures = new Map<string, { type: string; status: number }>();
  const describe = (r: EcrRepositoryRecord) => ({
    repositoryName: r.repositoryName,
    repositoryArn: `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${r.repositoryName}`,
    registryId: ACCOUNT,
    repositoryUri: `${ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/${r.repositoryName}`,
    createdAt: 1_700_000_000,
    imageTagMutability: r.imageTagMutability ?? "MUTABLE",
  });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const op = String(req.headers["x-amz-target"] ?? "").replace(
        /^AmazonEC2ContainerRegistry_V20150921\./,
        "",
      );
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as typeof body;
      } catch {
        // answered as an unknown operation below
      }
      requests.push({ op, body });
      const answer = (status: number, value: unknown) => {
        res.writeHead(status, {
          "content-type": "application/x-amz-json-1.1",
          ...(status >= 400 ? { "x-amzn-errortype": (value as { __type: string }).__type } : {}),
        });
        res.end(JSON.stringify(value));
      };
      const failure = failures.get(op);
      if (failure) {
        failures.delete(op);
        events.push(`ecr:${op} failed`);
        return answer(failure.status, { __type: failure.type, message: `${failure.type} (stand-in)` });
      }
      const name = String(body.repositoryName ?? (body.repositoryNames as string[] | undefined)?.[0] ?? "");
      events.push(`ecr:${op} ${name}`);
      switch (op) {
        case "DescribeRepositories": {
          const r = repositories.get(name);
          if (!r)
            return answer(400, {
              __type: "RepositoryNotFoundException",
              message: `The repository with name '${name}' does not exist in the registry with id '${ACCOUNT}'`,
            });
          return answer(200, { repositories: [describe(r)] });
        }
        case "CreateRepository": {
          if (repositories.has(name))
            return answer(400, {
              __type: "RepositoryAlreadyExistsException",
              message: `The repository with name '${name}' already exists in the registry with id '${ACCOUNT}'`,
            });
          const r: EcrRepositoryRecord = {
            repositoryName: name,
            imageTagMutability: body.imageTagMutability as string,
            imageScanningConfiguration: body.imageScanningConfiguration as { scanOnPush?: boolean },
            encryptionConfiguration: body.encryptionConfiguration as { encryptionType?: string },
          };
          repositories.set(name, r);
          return answer(200, { repository: describe(r) });
        }
        case "PutLifecyclePolicy": {
          const r = repositories.get(name);
          if (!r)
            return answer(400, { __type: "RepositoryNotFoundException", message: "no such repository" });
          r.lifecyclePolicyText = String(body.lifecyclePolicyText);
          return answer(200, {
            registryId: ACCOUNT,
            repositoryName: name,
            lifecyclePolicyText: r.lifecyclePolicyText,
          });
        }
        default:
          return answer(400, { __type: "UnknownOperationException", message: `${op} is not served here` });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const registryRule = (r: ProxiedRequest): Fault => {
    const upload = /^\/v2\/(.+)\/blobs\/uploads\/?(\?.*)?$/.exec(r.url);
    const manifest = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(r.url);
    const name = r.method === "POST" ? upload?.[1] : r.method === "PUT" ? manifest?.[1] : undefined;
    if (!name) return undefined;
    events.push(`registry:${r.method} ${name}`);
    if (repositories.has(name)) return undefined;
    return {
      kind: "status",
      status: 404,
      body: JSON.stringify({
        errors: [
          {
            code: "NAME_UNKNOWN",
            message: `The repository with name '${name}' does not exist in the registry with id '${ACCOUNT}'`,
          },
        ],
      }),
    };
  };

  return {
    url: `http://127.0.0.1:${port}`,
    repositories,
    requests,
    events,
    failNext(op, type, status = 400) {
      failures.set(op, { type, status });
    },
    registryRule,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment that points the AWS SDK at the stand-in, with throwaway credentials. */
export function ecrEnv(ecr: EcrStandIn): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_ECR: ecr.url,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "AKIDSTANDIN",
    AWS_SECRET_ACCESS_KEY: "stand-in-secret",
    AWS_EC2_METADATA_DISABLED: "true",
  };
}
