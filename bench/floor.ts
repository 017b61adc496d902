/**
 * The floor of a Node.js registry client, for `npm run bench` (rows 1 and 2): one image copied between two
 * plain-HTTP registries with nothing but HTTP requests, each blob's SHA-256 checked on the way as ferry
 * checks it — no plan, no presence checks, no retries, no progress, no report. What is left is the HTTP
 * client's own cost and Node's, so ferry's distance to this row is what ferry's code costs.
 *
 *   node FLOOR.mjs undici|http SRC_HOST/REPO:TAG DST_HOST/REPO:TAG [CONCURRENCY]
 *
 * The bench runs it bundled as the CLI is bundled (`bundleFloor`: the same esbuild options, undici's slim
 * entry), so that it starts as ferry starts; `node bench/floor.ts` runs it from source.
 * `undici`: undici's `request`, response bodies as async iterables, upload bodies as async generators —
 * ferry's client, used as ferry uses it.
 * `http`: Node's own `node:http` at its best (a native parser; the response piped into the upload and
 * hashed by a listener), to show what the choice of client costs.
 * The bench runs it with the flags and environment of the ferry executable's shebang line.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import { Readable } from "node:stream";
import { Agent, request } from "undici";

const [client, from, to, conc = "6"] = process.argv.slice(2);
if (!(client === "undici" || client === "http") || !from || !to) {
  process.stderr.write("usage: node bench/floor.ts undici|http SRC_HOST/REPO:TAG DST_HOST/REPO:TAG [N]\n");
  process.exit(2);
}

const parse = (ref: string) => {
  const slash = ref.indexOf("/");
  const colon = ref.lastIndexOf(":");
  return {
    base: `http://${ref.slice(0, slash)}/v2/${ref.slice(slash + 1, colon)}`,
    tag: ref.slice(colon + 1),
  };
};
const src = parse(from);
const dst = parse(to);
const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Buffer>;
}
type Send = (
  method: string,
  url: string,
  headers?: Record<string, string>,
  body?: AsyncIterable<Buffer> | Buffer,
) => Promise<Answer>;

function viaUndici(): { send: Send; close: () => Promise<void> } {
  const agent = new Agent({ connections: 32 });
  return {
    send: async (method, url, headers = {}, body) => {
      // undici takes async iterables as bodies; its types name only streams
      const r = await request(url, {
        method: method as "GET",
        headers,
        body: body as Readable | Buffer | undefined,
        dispatcher: agent,
      });
      return { status: r.statusCode, headers: r.headers, body: r.body };
    },
    close: () => agent.close(),
  };
}

function viaHttp(): { send: Send; close: () => Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  return {
    send: (method, url, headers = {}, body) =>
      new Promise((resolve, reject) => {
        const req = http.request(url, { method, headers, agent }, (res) =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
        );
        req.on("error", reject);
        if (!body) req.end();
        else if (Buffer.isBuffer(body)) req.end(body);
        else if (body instanceof Readable) body.pipe(req);
        else Readable.from(body).pipe(req);
      }),
    close: async () => agent.destroy(),
  };
}

const { send, close } = client === "undici" ? viaUndici() : viaHttp();

async function text(a: Answer): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of a.body) parts.push(c);
  return Buffer.concat(parts);
}

function expect(a: Answer, status: number, what: string): void {
  if (a.status !== status) throw new Error(`${what}: ${a.status}`);
}

const headers = (size: number) => ({
  "content-type": "application/octet-stream",
  "content-length": String(size),
});

/** The blob's bytes from the source into the destination, hashed on the way, committed only if they match. */
async function copyBlob(d: { digest: string; size: number }): Promise<void> {
  const get = await send("GET", `${src.base}/blobs/${d.digest}`);
  expect(get, 200, `GET ${d.digest}`);
  const post = await send("POST", `${dst.base}/blobs/uploads/`);
  expect(post, 202, "POST upload");
  await text(post);
  const location = new URL(String(post.headers.location), dst.base);
  location.searchParams.set("digest", d.digest);
  const hash = createHash("sha256");
  if (client === "http") {
    // node:http at its best: the response piped into the upload, hashed by a listener on the way
    const body = get.body as Readable;
    let n = 0;
    body.on("data", (c: Buffer) => {
      n += c.length;
      hash.update(c);
      if (n === d.size && `sha256:${hash.digest("hex")}` !== d.digest)
        body.destroy(new Error(`${d.digest}: digest mismatch`));
    });
    const put = await send("PUT", location.href, headers(d.size), body);
    expect(put, 201, `PUT ${d.digest}`);
    await text(put);
    return;
  }
  const verified = async function* () {
    let n = 0;
    for await (const c of get.body) {
      n += c.length;
      hash.update(c);
      if (n === d.size && `sha256:${hash.digest("hex")}` !== d.digest)
        throw new Error(`${d.digest}: digest mismatch`);
      yield c;
    }
  };
  const put = await send("PUT", location.href, headers(d.size), verified());
  expect(put, 201, `PUT ${d.digest}`);
  await text(put);
}

try {
  const got = await send("GET", `${src.base}/manifests/${src.tag}`, { accept: ACCEPT });
  expect(got, 200, "GET manifest");
  const raw = await text(got);
  const manifest = JSON.parse(raw.toString()) as {
    mediaType: string;
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  const queue = [manifest.config, ...manifest.layers];
  const worker = async () => {
    for (let d = queue.shift(); d; d = queue.shift()) await copyBlob(d);
  };
  await Promise.all(Array.from({ length: Number(conc) }, worker));
  const put = await send(
    "PUT",
    `${dst.base}/manifests/${dst.tag}`,
    { "content-type": manifest.mediaType },
    raw,
  );
  expect(put, 201, "PUT manifest");
  await text(put);
} finally {
  await close();
}
