/**
 * A small certificate authority for tests, made with the `openssl` command: a CA, server certificates
 * for loopback names, client certificates, and expired ones. Keys are P-256 (fast to make). Everything
 * lives in one temp dir, removed by `remove()`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeTmpDir, tmpDir } from "./tmp.ts";

export interface Issued {
  /** PEM files. */
  certPath: string;
  keyPath: string;
  cert: Buffer;
  key: Buffer;
}

export interface TestCa {
  dir: string;
  /** The CA's certificate (PEM file and bytes). */
  certPath: string;
  cert: Buffer;
  /** A server certificate for `names` (DNS names and IP addresses). */
  server(id: string, names: readonly string[], opts?: { expired?: boolean }): Issued;
  /** A client certificate (extendedKeyUsage clientAuth). */
  client(id: string, opts?: { expired?: boolean }): Issued;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** A fresh CA named `name`. */
export function makeCa(name = "ferry test CA"): TestCa {
  const dir = tmpDir("ferry-pki-");
  const keyOpts = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    [
      "req",
      "-x509",
      ...keyOpts,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  // `openssl ca` (for certificates valid in the past) keeps a small database.
  mkdirSync(join(dir, "db"));
  writeFileSync(join(dir, "db", "index.txt"), "");
  writeFileSync(join(dir, "db", "serial"), "1000\n");
  let serial = 0;

  const issue = (id: string, extensions: string, expired: boolean): Issued => {
    const base = `${id}-${++serial}`;
    openssl(
      ["req", "-new", ...keyOpts, "-keyout", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${id}`],
      dir,
    );
    writeFileSync(join(dir, `${base}.ext`), `${extensions}\n`);
    if (!expired) {
      openssl(
        [
          "x509",
          "-req",
          "-in",
          `${base}.csr`,
          "-CA",
          "ca.crt",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-out",
          `${base}.pem`,
          "-days",
          "1",
          "-extfile",
          `${base}.ext`,
        ],
        dir,
      );
    } else {
      // A certificate that expired in 2020: `openssl x509` (3.0) cannot back-date, `openssl ca` can.
      writeFileSync(
        join(dir, `${base}.cnf`),
        [
          "[ca]",
          "default_ca = test",
          "[test]",
          `dir = ${dir}`,
          "database = $dir/db/index.txt",
          "serial = $dir/db/serial",
          "new_certs_dir = $dir/db",
          "certificate = $dir/ca.crt",
          "private_key = $dir/ca.key",
          "default_md = sha256",
          "policy = any",
          "unique_subject = no",
          "copy_extensions = none",
          "[any]",
          "commonName = supplied",
          "[ext]",
          extensions,
          "",
        ].join("\n"),
      );
      openssl(
        [
          "ca",
          "-batch",
          "-notext",
          "-config",
          `${base}.cnf`,
          "-extensions",
          "ext",
          "-startdate",
          "20200101000000Z",
          "-enddate",
          "20200102000000Z",
          "-in",
          `${base}.csr`,
          "-out",
          `${base}.pem`,
        ],
        dir,
      );
    }
    const certPath = join(dir, `${base}.pem`);
    const keyPath = join(dir, `${base}.key`);
    return { certPath, keyPath, cert: readFileSync(certPath), key: readFileSync(keyPath) };
  };

  return {
    dir,
    certPath: join(dir, "ca.crt"),
    cert: readFileSync(join(dir, "ca.crt")),
    server(id, names, opts = {}) {
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
      return issue(
        id,
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}`,
        opts.expired ?? false,
      );
    },
    client(id, opts = {}) {
      return issue(
        id,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth",
        opts.expired ?? false,
      );
    },
    remove() {
      removeTmpDir(dir);
    },
  };
}

/**
 * Writes a certificate directory as skopeo and Docker read it: `ca.crt` (trusted CAs), and
 * `client.cert` + `client.key` when a client certificate is given.
 */
export function writeCertDir(dir: string, files: { ca?: Buffer; client?: Issued }): string {
  mkdirSync(dir, { recursive: true });
  if (files.ca) writeFileSync(join(dir, "ca.crt"), files.ca);
  if (files.client) {
    writeFileSync(join(dir, "client.cert"), files.client.cert);
    writeFileSync(join(dir, "client.key"), files.client.key, { mode: 0o600 });
  }
  return dir;
}
