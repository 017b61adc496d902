/**
 * A stand-in for AWS Secrets Manager's control plane, enough for ferry's functions: GetSecretValue over
 * the service's JSON protocol (`POST /`, `X-Amz-Target: secretsmanager.GetSecretValue`, a JSON body
 * `{"SecretId"}`), answered from a fixed map of secret id → string. Signatures are not checked. Point an
 * SDK client at it with AWS_ENDPOINT_URL_SECRETS_MANAGER (or `endpoint`).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface SecretsManagerStandIn {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every request: the operation (X-Amz-Target) and the SecretId asked for. */
  requests: { target: string; secretId?: string }[];
  close(): Promise<void>;
}

export async function startSecretsManager(secrets: Record<string, string>): Promise<SecretsManagerStandIn> {
  const requests: SecretsManagerStandIn["requests"] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      let body: { SecretId?: string } = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as typeof body;
      } catch {
        // answered below as a bad request
      }
      requests.push({ target, ...(body.SecretId ? { secretId: body.SecretId } : {}) });
      const answer = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify(value));
      };
      if (target !== "secretsmanager.GetSecretValue")
        return answer(400, { __type: "UnknownOperationException", message: `${target} is not served here` });
      const id = body.SecretId ?? "";
      if (!(id in secrets))
        return answer(400, {
          __type: "ResourceNotFoundException",
          message: "Secrets Manager can't find the specified secret.",
        });
      const name = /:secret:([^:]+)$/.exec(id)?.[1] ?? id;
      return answer(200, {
        ARN: id,
        Name: name,
        SecretString: secrets[id],
        VersionId: "00000000-0000-0000-0000-000000000001",
        VersionStages: ["AWSCURRENT"],
        CreatedDate: 1_700_000_000,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
