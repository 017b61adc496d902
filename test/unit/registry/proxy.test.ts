/** Proxy settings as curl and Go read them: which variable, which requests, NO_PROXY's grammar. */
import { describe, expect, it } from "vitest";
import {
  compileNoProxy,
  ProxyError,
  proxyAuthorization,
  proxyFromEnv,
  proxyRouter,
} from "../../../shared/registry/http/proxy.ts";

const route = (env: Record<string, string>, url: string) =>
  proxyRouter(proxyFromEnv(env))(new URL(url))?.href;

describe("proxyFromEnv", () => {
  it("reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY in both cases; the lower-case form wins", () => {
    expect(proxyFromEnv({})).toBeUndefined();
    expect(proxyFromEnv({ NO_PROXY: "*" })).toBeUndefined();
    const s = proxyFromEnv({
      HTTPS_PROXY: "http://upper:3128",
      https_proxy: "http://lower:3128",
      HTTP_PROXY: "http://plain:8080",
      no_proxy: "internal",
    });
    expect(s?.httpsProxy?.href).toBe("http://lower:3128/");
    expect(s?.httpProxy?.href).toBe("http://plain:8080/");
    expect(s?.noProxy).toBe("internal");
  });

  it("takes a proxy without a scheme as http://, and an https:// proxy as such", () => {
    expect(proxyFromEnv({ HTTPS_PROXY: "proxy.corp:3128" })?.httpsProxy?.href).toBe(
      "http://proxy.corp:3128/",
    );
    expect(proxyFromEnv({ HTTPS_PROXY: "https://proxy.corp" })?.httpsProxy?.protocol).toBe("https:");
  });

  it("refuses what it cannot use, naming the variable and never the value (it may hold a password)", () => {
    const bad = [
      ["HTTPS_PROXY", "socks5://u:hunter2@proxy:1080", /HTTPS_PROXY: socks5 proxies are not supported/],
      [
        "http_proxy",
        "http://u:hunter2@proxy:3128/path",
        /http_proxy \(http:\/\/proxy:3128\/path\): a proxy URL is/,
      ],
      ["HTTP_PROXY", "http://u:hunter2@[bad", /HTTP_PROXY is not a proxy URL/],
    ] as const;
    for (const [name, value, message] of bad) {
      let err: unknown;
      try {
        proxyFromEnv({ [name]: value });
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(ProxyError);
      expect((err as Error).message, name).toMatch(message);
      expect((err as Error).message, name).not.toContain("hunter2");
    }
  });
});

describe("proxyRouter", () => {
  const proxy = "http://proxy:3128/";

  it("https requests use HTTPS_PROXY, plain http ones HTTP_PROXY, with no fallback between them (as Go)", () => {
    expect(route({ HTTPS_PROXY: proxy }, "https://ghcr.io/v2/")).toBe(proxy);
    expect(route({ HTTPS_PROXY: proxy }, "http://registry.corp/v2/")).toBeUndefined();
    expect(route({ HTTP_PROXY: proxy }, "http://registry.corp/v2/")).toBe(proxy);
    expect(route({ HTTP_PROXY: proxy }, "https://ghcr.io/v2/")).toBeUndefined();
  });

  it("never routes loopback through a proxy", () => {
    for (const url of [
      "https://localhost:5000/",
      "https://127.0.0.1/",
      "http://127.3.4.5:80/",
      "https://[::1]:5000/",
      "https://a.localhost/",
    ])
      expect(route({ HTTPS_PROXY: proxy, HTTP_PROXY: proxy }, url), url).toBeUndefined();
  });

  it("NO_PROXY: names with their subdomains, leading dots and *. for subdomains only, ports, IPs, CIDR, *", () => {
    const cases: [string, string, boolean][] = [
      // [NO_PROXY, URL, bypassed]
      ["example.com", "https://example.com/", true],
      ["example.com", "https://reg.example.com/", true],
      ["example.com", "https://notexample.com/", false],
      [".example.com", "https://example.com/", false],
      [".example.com", "https://reg.example.com/", true],
      ["*.example.com", "https://example.com/", false],
      ["*.example.com", "https://a.b.example.com/", true],
      ["Example.COM", "https://REG.example.com/", true],
      ["example.com:5000", "https://example.com:5000/", true],
      ["example.com:5000", "https://example.com/", false],
      ["ghcr.io, example.com ,", "https://example.com/", true],
      ["10.1.2.3", "https://10.1.2.3/", true],
      ["10.0.0.0/8", "https://10.200.0.1:5000/", true],
      ["10.0.0.0/8", "https://11.0.0.1/", false],
      ["10.0.0.0/8", "https://ten.example/", false], // names are not resolved
      ["fd00::/8", "https://[fd12::1]/", true],
      ["[2001:db8::1]:5000", "https://[2001:db8::1]:5000/", true],
      ["2001:db8::1", "https://[2001:db8::1]/", true],
      ["*", "https://anything.example/", true],
      ["", "https://example.com/", false],
      ["10.0.0.0/99, nonsense/", "https://example.com/", false],
    ];
    for (const [noProxy, url, bypassed] of cases)
      expect(route({ HTTPS_PROXY: proxy, NO_PROXY: noProxy }, url), `${noProxy} ${url}`).toBe(
        bypassed ? undefined : proxy,
      );
    // the port of a NO_PROXY entry is compared with the URL's, its default included
    expect(
      route({ HTTP_PROXY: proxy, NO_PROXY: "plain.example:80" }, "http://plain.example/"),
    ).toBeUndefined();
    expect(compileNoProxy(" , ,")).toEqual([]);
  });
});

describe("proxyAuthorization", () => {
  it("is Basic of the URL's percent-decoded user and password, or nothing without them", () => {
    expect(proxyAuthorization(new URL("http://proxy:3128"))).toBeUndefined();
    const header = proxyAuthorization(new URL("http://me%40corp:p%3Ass@proxy:3128"));
    expect(Buffer.from(header!.slice("Basic ".length), "base64").toString()).toBe("me@corp:p:ss");
  });
});
