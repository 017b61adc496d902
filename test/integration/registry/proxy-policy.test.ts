/**
 * The Lambdas' network policy (`publicOnly`) when registry traffic goes through a forward proxy (a VPC
 * with an egress proxy): the proxy itself may be private — it is configuration, not input — while the
 * target is checked before the proxy is asked: an address in the URL, or every address its name resolves
 * to here. A name only the proxy resolves is the proxy's to judge (the documented limit).
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RegistryClient } from "../../../shared/registry/client.ts";
import { AddressNotAllowedError, checkProxiedTarget } from "../../../shared/registry/http/network.ts";
import { proxyFromEnv } from "../../../shared/registry/http/proxy.ts";
import { type ForwardProxy, startForwardProxy } from "../../helpers/forward-proxy.ts";
import { makeCa, type TestCa } from "../../helpers/pki.ts";

const NAME = "registry.ferry.test";
let proxy: ForwardProxy;
let ca: TestCa;
let plain: http.Server;
let secure: https.Server;
let plainPort: number;
let securePort: number;
const seen: string[] = [];

beforeAll(async () => {
  ca = makeCa();
  const cert = ca.server("registry", [NAME]);
  const respond = (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push(`${req.method} ${req.headers.host}${req.url}`);
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  };
  plain = http.createServer(respond);
  secure = https.createServer({ cert: cert.cert, key: cert.key }, respond);
  await Promise.all([
    new Promise<void>((r) => plain.listen(0, "127.0.0.1", r)),
    new Promise<void>((r) => secure.listen(0, "127.0.0.1", r)),
  ]);
  plainPort = (plain.address() as AddressInfo).port;
  securePort = (secure.address() as AddressInfo).port;
  proxy = await startForwardProxy({ hosts: { [NAME]: "127.0.0.1" } });
});
afterAll(async () => {
  plain.closeAllConnections();
  secure.closeAllConnections();
  await Promise.all([new Promise((r) => plain.close(r)), new Promise((r) => secure.close(r)), proxy.close()]);
  ca.remove();
});
beforeEach(() => {
  proxy.requests.length = 0;
  seen.length = 0;
});

function lambdaLikeClient(extra: { plainHttp?: boolean } = {}) {
  return new RegistryClient({
    network: { publicOnly: true },
    proxy: proxyFromEnv({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url })!,
    ca: ca.cert,
    retries: 0,
    ...extra,
  });
}

describe("publicOnly through a forward proxy", () => {
  it("reaches a registry through a proxy on a private (here loopback) address: CONNECT and absolute form", async () => {
    const c = lambdaLikeClient();
    const p = lambdaLikeClient({ plainHttp: true });
    try {
      await c.ping(`${NAME}:${securePort}`);
      await p.ping(`${NAME}:${plainPort}`);
      expect(proxy.requests.map((r) => `${r.method} ${r.target}`)).toEqual([
        `CONNECT ${NAME}:${securePort}`,
        `GET http://${NAME}:${plainPort}/v2/`,
      ]);
      expect(seen).toEqual([`GET ${NAME}:${securePort}/v2/`, `GET ${NAME}:${plainPort}/v2/`]);
    } finally {
      await Promise.all([c.close(), p.close()]);
    }
  });

  it("refuses a private, link-local or loopback target before the proxy is asked", async () => {
    const c = lambdaLikeClient();
    const p = lambdaLikeClient({ plainHttp: true });
    try {
      for (const [client, host] of [
        [c, "10.1.2.3:5000"],
        [p, "169.254.169.254"],
        [c, "[fd00::1]:443"],
      ] as const) {
        const err = await client.ping(host).catch((e: unknown) => e);
        expect(err, host).toBeInstanceOf(AddressNotAllowedError);
      }
      expect(proxy.requests).toEqual([]);
    } finally {
      await Promise.all([c.close(), p.close()]);
    }
  });

  it("checks every address a name resolves to here (localhost → loopback); a name that does not resolve here is the proxy's", async () => {
    const policy = { publicOnly: true };
    await expect(checkProxiedTarget(policy, "localhost", 443)).rejects.toBeInstanceOf(AddressNotAllowedError);
    await expect(checkProxiedTarget(policy, "127.0.0.1", 443)).rejects.toThrow(/a loopback address/);
    await expect(checkProxiedTarget(policy, NAME, 443)).resolves.toBeUndefined();
    // declared private: allowed by name, with or without its port
    await expect(
      checkProxiedTarget({ ...policy, allowPrivateHosts: ["localhost:443"] }, "localhost", 443),
    ).resolves.toBeUndefined();
    await expect(
      checkProxiedTarget({ ...policy, allowPrivateHosts: ["10.0.0.7"] }, "10.0.0.7", 5000),
    ).resolves.toBeUndefined();
    // no policy: nothing checked
    await expect(checkProxiedTarget(undefined, "127.0.0.1", 443)).resolves.toBeUndefined();
  });
});
