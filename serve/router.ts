/**
 * Maps a request to its handler. The path is matched raw, never URL-normalised or percent-decoded
 * as a whole (so `/v2/../x` or `%2e%2e` reach the name check and fail it instead of being
 * resolved); only the reference/digest/uuid segment is decoded, then grammar-checked.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Authenticator } from "./auth.ts";
import type { Emulation } from "./emulate.ts";
import { RegistryError } from "./errors.ts";
import { handleBlob } from "./handlers/blobs.ts";
import { handleCatalog, handleReferrers, handleTags } from "./handlers/listing.ts";
import { handleManifest } from "./handlers/manifests.ts";
import { handleUploadSession, handleUploadStart } from "./handlers/uploads.ts";
import { type Context, header, methodNotAllowed, sendError, sendJson } from "./http.ts";
import { clientKey } from "./limits.ts";
import { checkName } from "./names.ts";
import type { Storage } from "./storage/index.ts";

type Route = {
  pattern: RegExp;
  run: (ctx: Context, name: string, arg: string) => Promise<void>;
};

/** Tried in order; group 1 is the repository name, group 2 (if any) the last segment. */
const ROUTES: Route[] = [
  { pattern: /^\/v2\/(.+)\/tags\/list$/, run: (ctx, name) => handleTags(ctx, name) },
  { pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/, run: handleManifest },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, run: (ctx, name) => handleUploadStart(ctx, name) },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, run: handleUploadSession },
  { pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/, run: handleBlob },
  { pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, run: handleReferrers },
];

export const API_VERSION_HEADER = "Docker-Distribution-API-Version";

export interface RouterOptions {
  storage: Storage;
  auth?: Authenticator;
  emulation: Emulation;
  /** Called with unexpected (non-protocol) errors. */
  onInternalError: (err: unknown, req: IncomingMessage) => void;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

async function route(ctx: Context, path: string, auth: Authenticator | undefined): Promise<void> {
  if (!path.startsWith("/v2/") && path !== "/v2") throw new RegistryError("NOT_FOUND", { detail: { path } });
  if (auth) await auth.check(header(ctx.req, "authorization"), clientKey(ctx.req.socket.remoteAddress));
  if (path === "/v2/" || path === "/v2") {
    if (ctx.req.method !== "GET" && ctx.req.method !== "HEAD") throw methodNotAllowed(["GET", "HEAD"]);
    sendJson(ctx, 200, {});
    return;
  }
  if (path === "/v2/_catalog") return handleCatalog(ctx);
  for (const r of ROUTES) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    const name = checkName(m[1]!);
    return r.run(ctx, name, decodeSegment(m[2] ?? ""));
  }
  throw new RegistryError("NOT_FOUND", { detail: { path } });
}

/** Returns the `request` listener of the HTTP server; the promise settles when the request is done. */
export function createRouter(
  opts: RouterOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    res.setHeader(API_VERSION_HEADER, "registry/2.0");
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const ctx: Context = {
      req,
      res,
      storage: opts.storage,
      query: new URLSearchParams(q < 0 ? "" : url.slice(q + 1)),
      emulation: opts.emulation,
    };
    try {
      await route(ctx, path, opts.auth);
    } catch (err) {
      if (res.headersSent || res.destroyed || !res.socket || res.socket.destroyed) {
        // Mid-stream failure or the client went away: nothing sensible can be sent.
        if (!(err instanceof RegistryError) && !isDisconnect(err)) opts.onInternalError(err, req);
        res.destroy();
        return;
      }
      if (err instanceof RegistryError) {
        sendError(req, res, err);
        return;
      }
      opts.onInternalError(err, req);
      sendError(req, res, new RegistryError("UNKNOWN", { message: "internal server error" }));
    }
  };
}

function isDisconnect(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (
    code === "ECONNRESET" ||
    code === "EPIPE" ||
    code === "ERR_STREAM_PREMATURE_CLOSE" ||
    code === "ERR_STREAM_DESTROYED" ||
    (err instanceof Error && err.message === "request aborted") ||
    (err instanceof Error && err.message === "aborted")
  );
}
