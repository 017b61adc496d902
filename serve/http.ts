/** Small helpers shared by the handlers: the request context, responses, and body reading. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Emulation } from "./emulate.ts";
import { RegistryError } from "./errors.ts";
import type { Storage } from "./storage/index.ts";

/** Everything a handler needs for one request. */
export interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  storage: Storage;
  /** Parsed query string of the request. */
  query: URLSearchParams;
  /** Whose upload rules the upload and blob endpoints follow (emulate.ts). */
  emulation: Emulation;
}

/** Ends the response with a status, headers and an optional small body. */
export function send(
  ctx: Context,
  status: number,
  headers: Record<string, string | number> = {},
  body?: string | Buffer,
): void {
  const { res } = ctx;
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body === undefined) {
    if (status !== 204 && status !== 304 && !res.hasHeader("Content-Length"))
      res.setHeader("Content-Length", 0);
    res.end();
    return;
  }
  if (!res.hasHeader("Content-Length")) res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(ctx.req.method === "HEAD" ? undefined : body);
}

/** Answers a JSON document. */
export function sendJson(
  ctx: Context,
  status: number,
  value: unknown,
  headers: Record<string, string | number> = {},
): void {
  send(ctx, status, { "Content-Type": "application/json", ...headers }, JSON.stringify(value));
}

/** Answers an error as an OCI error document. */
export function sendError(req: IncomingMessage, res: ServerResponse, err: RegistryError): void {
  const body = err.body();
  res.statusCode = err.status;
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.setHeader("Content-Type", "application/json");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  // A big request body we did not read would otherwise be drained for the next keep-alive request.
  if (!req.complete && hasLargeOrUnknownBody(req)) res.setHeader("Connection", "close");
  res.end(req.method === "HEAD" ? undefined : body);
}

function hasLargeOrUnknownBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length === undefined) return req.headers["transfer-encoding"] !== undefined;
  return Number(length) > 1024 * 1024;
}

/** True when the request carries a body (a non-zero Content-Length, or chunked encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return Number(length) > 0;
  return req.headers["transfer-encoding"] !== undefined;
}

/**
 * Reads a whole request body of at most `limit` bytes; beyond that throws `tooLarge()` without
 * reading the rest.
 */
export async function readBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: () => RegistryError,
): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  // Not `for await`: leaving that loop early destroys the socket, and the error could not be sent.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        cleanup();
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new Error("request aborted"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** The value of a single-valued request header. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Throws 405 UNSUPPORTED for a method the route does not know. */
export function methodNotAllowed(allow: string[]): RegistryError {
  return new RegistryError("UNSUPPORTED", { headers: { Allow: allow.join(", ") } });
}
