/**
 * Per-registry TLS settings: certificate directories read with skopeo's rules, the certs.d search, the
 * https decision for loopback registries, and what a handshake failure is called.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  certDirTls,
  certsDLookup,
  certsDRoots,
  readCertDir,
  TlsError,
  tlsFailure,
} from "../../../shared/registry/http/tls.ts";
import { resolveOptions } from "../../../shared/registry/options.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const PEM = (what: string) => Buffer.from(`-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`);

function dirWith(files: Record<string, Buffer>): string {
  const dir = tmpDir("ferry-certdir-");
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

describe("readCertDir (skopeo's convention)", () => {
  it("*.crt are CAs, X.cert + X.key the client pair; other files are ignored", () => {
    const dir = dirWith({
      "a.crt": PEM("CERTIFICATE a"),
      "b.crt": PEM("CERTIFICATE b"),
      "client.cert": PEM("CERTIFICATE c"),
      "client.key": PEM("PRIVATE KEY"),
      README: Buffer.from("notes"),
    });
    const m = readCertDir(dir);
    expect(m.ca?.map(String)).toEqual([String(PEM("CERTIFICATE a")), String(PEM("CERTIFICATE b"))]);
    expect(String(m.cert)).toBe(String(PEM("CERTIFICATE c")));
    expect(String(m.key)).toBe(String(PEM("PRIVATE KEY")));
    expect(readCertDir(dirWith({ "ca.crt": PEM("CERTIFICATE") }))).toEqual({ ca: [PEM("CERTIFICATE")] });
  });

  it("refuses a certificate without its key, a key without its certificate, and two client pairs", () => {
    const cases: [Record<string, Buffer>, RegExp][] = [
      [
        { "client.cert": PEM("C") },
        /client certificate client\.cert has no key client\.key \(CA certificates take the extension \.crt\)/,
      ],
      [{ "client.key": PEM("K") }, /key client\.key has no client certificate client\.cert/],
      [
        { "a.cert": PEM("C"), "a.key": PEM("K"), "b.cert": PEM("C"), "b.key": PEM("K") },
        /more than one client certificate \(a\.cert, b\.cert\)/,
      ],
    ];
    for (const [files, message] of cases) {
      const dir = dirWith(files);
      expect(() => readCertDir(dir)).toThrow(TlsError);
      expect(() => readCertDir(dir)).toThrow(message);
    }
    expect(() => readCertDir(join(tmpDir(), "missing"))).toThrow(/cannot read the certificate directory/);
  });

  it("names files, never their contents", () => {
    const dir = dirWith({ "client.cert": Buffer.from("-----BEGIN CERTIFICATE-----\nSECRETBYTES\n") });
    expect(() => readCertDir(dir)).toThrow(/client\.cert/);
    try {
      readCertDir(dir);
    } catch (e) {
      expect((e as Error).message).not.toContain("SECRETBYTES");
    }
  });
});

describe("certs.d", () => {
  it("searches $XDG_CONFIG_HOME (default ~/.config)/containers, /etc/containers, /etc/docker, in that order", () => {
    expect(certsDRoots({ XDG_CONFIG_HOME: "/x" })).toEqual([
      "/x/containers/certs.d",
      "/etc/containers/certs.d",
      "/etc/docker/certs.d",
    ]);
    expect(certsDRoots({ HOME: "/home/me" })[0]).toBe("/home/me/.config/containers/certs.d");
  });

  it("finds <root>/<host:port>/ in the first root that has it; other names find nothing", () => {
    const [a, b] = [tmpDir("ferry-root-a-"), tmpDir("ferry-root-b-")];
    mkdirSync(join(b, "reg.example:5000"));
    mkdirSync(join(a, "reg.example"));
    mkdirSync(join(b, "reg.example"));
    const lookup = certsDLookup([a, b]);
    expect(lookup("reg.example:5000")?.source).toBe(join(b, "reg.example:5000"));
    expect(lookup("reg.example")?.source).toBe(join(a, "reg.example"));
    expect(lookup("other.example")).toBeUndefined();
    expect(lookup("../reg.example")).toBeUndefined();
  });
});

describe("resolveOptions: TLS settings per registry", () => {
  const tls = certDirTls("/certs");

  it("a loopback registry with TLS settings is spoken to over https; without, plain http", () => {
    const o = resolveOptions({ registryTls: (r) => (r === "localhost:5000" ? tls : undefined) });
    expect(o.isPlainHttp("localhost:5000")).toBe(false);
    expect(o.isPlainHttp("localhost:5001")).toBe(true);
    expect(o.isPlainHttp("127.0.0.1:5000")).toBe(true);
    // an explicit choice wins
    expect(resolveOptions({ plainHttp: true, registryTls: () => tls }).isPlainHttp("localhost:5000")).toBe(
      true,
    );
  });

  it("looks settings up by the authority connected to: host:443 for a default port, docker.io for its API host", () => {
    const asked: string[] = [];
    const o = resolveOptions({
      registryTls: (r) => {
        asked.push(r);
        return r === "docker.io" || r === "reg.example:443" ? tls : undefined;
      },
    });
    expect(o.tlsFor("registry-1.docker.io")).toBe(tls);
    expect(o.tlsFor("reg.example")).toBe(tls);
    expect(o.tlsFor("other.example:5000")).toBeUndefined();
    const before = asked.length;
    expect(o.tlsFor("reg.example")).toBe(tls); // memoized
    expect(asked.length).toBe(before);
  });
});

describe("tlsFailure", () => {
  it("names the reason of the errors a handshake fails with, and where to fix it", () => {
    const cases: [string, RegExp, RegExp][] = [
      ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", /unknown authority/, /--ca-file/],
      ["SELF_SIGNED_CERT_IN_CHAIN", /unknown authority/, /--tls-verify=false/],
      ["CERT_HAS_EXPIRED", /has expired/, /--ca-file/],
      ["ERR_TLS_CERT_ALTNAME_INVALID", /not valid for this host name/, /--ca-file/],
      ["ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED", /requires a client certificate/, /--cert-dir/],
      ["ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE", /requires a client certificate, or refused/, /certs\.d/],
      ["ERR_SSL_TLSV1_ALERT_UNKNOWN_CA", /does not trust the client certificate/, /--dest-cert-dir/],
      ["ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED", /client certificate: expired/, /--src-cert-dir/],
      ["ERR_SSL_WRONG_VERSION_NUMBER", /does not speak TLS/, /--plain-http/],
      ["ERR_SSL_SOMETHING_ELSE", /TLS handshake failed \(ERR_SSL_SOMETHING_ELSE\)/, /--ca-file/],
    ];
    for (const [code, reason, hint] of cases) {
      const f = tlsFailure(Object.assign(new Error("x"), { code }));
      expect(f?.reason, code).toMatch(reason);
      expect(f?.hint, code).toMatch(hint);
    }
    // found in a cause, as undici wraps errors
    expect(
      tlsFailure(new Error("wrapped", { cause: Object.assign(new Error(), { code: "CERT_HAS_EXPIRED" }) }))
        ?.code,
    ).toBe("CERT_HAS_EXPIRED");
    expect(tlsFailure(Object.assign(new Error("reset"), { code: "ECONNRESET" }))).toBeUndefined();
  });
});
