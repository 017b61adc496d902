/**
 * Starts a real CNCF distribution registry (`docker-registry serve config.yml`, Debian package
 * docker-registry 2.8) on a free loopback port, with filesystem storage in a temp dir and no auth,
 * htpasswd basic auth, or token auth backed by the test token server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, closeSync, constants, openSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import type { RegistryInfo } from "./context.ts";
import { removeTmpDir, tmpDir } from "./tmp.ts";
import { startTokenServer, type TokenServer } from "./token-server.ts";

export type AuthMode = "none" | "basic" | "token";

export interface DistributionOptions {
  auth: AuthMode;
  /** Enable the registry's access log (in logFile). Default false. */
  accessLog?: boolean;
  /**
   * Log as JSON at level info (`log.formatter: json`): every request is a "response completed" record in
   * logFile, as a registry whose traffic is recorded for `ferry bench trace convert`. Default false.
   */
  jsonLog?: boolean;
  /** Token lifetime for auth "token". Default 300. */
  tokenTtlSeconds?: number;
  /** For "basic" and "token". Default "ferry". */
  username?: string;
  /** For "basic" and "token". Default random. */
  password?: string;
  /**
   * Run the registry on these CPUs only (a `taskset -c` list such as "1" or "2-3"), so that a benchmark's
   * load generator does not take CPU from the registry it measures. Default: all CPUs.
   */
  cpus?: string;
  /**
   * Serve https (distribution's `http.tls`) with this certificate and key (PEM files); with `clientCas`
   * (PEM files), every client must present a certificate signed by one of them (`http.tls.clientcas`:
   * Go's RequireAndVerifyClientCert). `probe` is the client certificate the readiness check presents.
   */
  tls?: {
    certPath: string;
    keyPath: string;
    clientCas?: readonly string[];
    probe?: { cert: Buffer; key: Buffer };
  };
}

export interface RunningDistribution {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" ("https://" with `tls`) */
  url: string;
  auth: AuthMode;
  username?: string;
  password?: string;
  /** The filesystem driver's root directory. */
  storageDir: string;
  /** The token server, for auth "token" (in-process: requests, reset(), ttlSeconds). */
  token?: TokenServer;
  /** The registry's stdout and stderr. */
  logFile: string;
  /** The registry's process id (the benchmarks read its CPU time). */
  pid: number;
  /** SIGTERM, SIGKILL after 3 s; stops the token server; removes the temp dirs. Idempotent. */
  stop(): Promise<void>;
}

export const DEFAULT_REGISTRY_BIN = "/usr/bin/docker-registry";
const BASIC_REALM = "ferry-test";
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const PORT_ATTEMPTS = 5;

/** Children still running, killed if the process exits without calling stop(). */
const live = new Set<ChildProcess>();
let exitHooked = false;
function trackChild(child: ChildProcess): void {
  if (!exitHooked) {
    exitHooked = true;
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/** The registry binary, or an Error that says how to install it. */
export function registryBinary(): string {
  const bin = process.env.FERRY_REGISTRY_BIN || DEFAULT_REGISTRY_BIN;
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `CNCF distribution registry binary not found or not executable at ${bin}` +
        (process.env.FERRY_REGISTRY_BIN ? " (from FERRY_REGISTRY_BIN)" : "") +
        ". Install it with: apt-get install -y docker-registry" +
        " (or point FERRY_REGISTRY_BIN at a distribution 2.8+ `registry` binary).",
    );
  }
  return bin;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function logTail(logFile: string, lines = 30): string {
  try {
    const text = readFileSync(logFile, "utf8").trimEnd();
    return text.split("\n").slice(-lines).join("\n") || "(log empty)";
  } catch {
    return "(no log)";
  }
}

/** Double-quoted YAML scalar (JSON strings are valid YAML). */
const q = (s: string) => JSON.stringify(s);

function configYaml(p: {
  port: number;
  storageDir: string;
  accessLog: boolean;
  jsonLog?: boolean;
  htpasswdPath?: string;
  token?: TokenServer;
  tls?: DistributionOptions["tls"];
}): string {
  const lines = [
    "version: 0.1",
    "log:",
    `  level: ${p.jsonLog ? "info" : "warn"}`,
    `  formatter: ${p.jsonLog ? "json" : "text"}`,
    "  accesslog:",
    `    disabled: ${!p.accessLog}`,
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${q(p.storageDir)}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: ${q(`127.0.0.1:${p.port}`)}`,
    `  secret: ${q(randomBytes(16).toString("hex"))}`,
    "  headers:",
    "    X-Content-Type-Options: [nosniff]",
  ];
  if (p.tls) {
    lines.push("  tls:", `    certificate: ${q(p.tls.certPath)}`, `    key: ${q(p.tls.keyPath)}`);
    if (p.tls.clientCas?.length)
      lines.push("    clientcas:", ...p.tls.clientCas.map((c) => `      - ${q(c)}`));
  }
  if (p.htpasswdPath) {
    lines.push("auth:", "  htpasswd:", `    realm: ${q(BASIC_REALM)}`, `    path: ${q(p.htpasswdPath)}`);
  } else if (p.token) {
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${q(p.token.realm)}`,
      `    service: ${q(p.token.service)}`,
      `    issuer: ${q(p.token.issuer)}`,
      `    rootcertbundle: ${q(p.token.rootCertPath)}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** GET /v2/ once (over https with `tls`, trusting any certificate); resolves the status code. */
function probe(port: number, tls?: DistributionOptions["tls"]): Promise<number> {
  return new Promise((resolve, reject) => {
    const opts = {
      host: "127.0.0.1",
      port,
      path: "/v2/",
      method: "GET",
      agent: false,
      timeout: 1000,
    } as const;
    const onResponse = (res: import("node:http").IncomingMessage) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    };
    const req = tls
      ? httpsRequest({ ...opts, rejectUnauthorized: false, ...(tls.probe ?? {}) }, onResponse)
      : httpRequest(opts, onResponse);
    req.on("timeout", () => req.destroy(new Error("probe timeout")));
    req.on("error", reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  if (await waitForExit(child, STOP_GRACE_MS)) return;
  child.kill("SIGKILL");
  await waitForExit(child, STOP_GRACE_MS);
}

class PortInUse extends Error {}

/**
 * Spawns the registry and waits until GET /v2/ answers 200 or 401. Throws PortInUse if the
 * registry died because the port was taken.
 */
async function launch(
  bin: string,
  configPath: string,
  logFile: string,
  port: number,
  cpus?: string,
  tls?: DistributionOptions["tls"],
): Promise<ChildProcess> {
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    // taskset execs the registry: the child's pid is the registry's own
    const [cmd, argv] = cpus
      ? ["taskset", ["-c", cpus, bin, "serve", configPath]]
      : [bin, ["serve", configPath]];
    child = spawn(cmd as string, argv as string[], { stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  trackChild(child);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastStatus = 0;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`could not start ${bin}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      const tail = logTail(logFile);
      if (/address already in use/i.test(tail)) throw new PortInUse(tail);
      throw new Error(
        `docker-registry exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready.\n` +
          `config: ${configPath}\nlog tail (${logFile}):\n${tail}`,
      );
    }
    try {
      lastStatus = await probe(port, tls);
      if (lastStatus === 200 || lastStatus === 401) return child;
    } catch {
      // not listening yet
    }
    await sleep(25);
  }
  await killChild(child);
  throw new Error(
    `docker-registry did not answer GET /v2/ with 200 or 401 within ${READY_TIMEOUT_MS} ms ` +
      `(last status ${lastStatus || "none"}).\nconfig: ${configPath}\nlog tail (${logFile}):\n${logTail(logFile)}`,
  );
}

export async function startDistribution(opts: DistributionOptions): Promise<RunningDistribution> {
  const bin = registryBinary();
  const dir = tmpDir(`ferry-registry-${opts.auth}-`);
  const storageDir = join(dir, "storage");
  const configPath = join(dir, "config.yml");
  const logFile = join(dir, "registry.log");

  let username: string | undefined;
  let password: string | undefined;
  let htpasswdPath: string | undefined;
  let token: TokenServer | undefined;

  try {
    if (opts.auth !== "none") {
      username = opts.username ?? "ferry";
      password = opts.password ?? randomBytes(12).toString("base64url");
      if (username.includes(":")) throw new Error("username must not contain ':'");
    }
    if (opts.auth === "basic") {
      htpasswdPath = join(dir, "htpasswd");
      // Cost 4 (the minimum): the registry runs bcrypt on every request, and cost 10 would add
      // tens of milliseconds to each one. bcryptjs writes "$2b$", which Go's bcrypt accepts.
      const hash = bcrypt.hashSync(password!, 4);
      writeFileSync(htpasswdPath, `${username}:${hash}\n`, { mode: 0o600 });
    } else if (opts.auth === "token") {
      const tokenOpts: Parameters<typeof startTokenServer>[0] = {
        users: { [username!]: password! },
        dir,
      };
      if (opts.tokenTtlSeconds !== undefined) tokenOpts.ttlSeconds = opts.tokenTtlSeconds;
      token = await startTokenServer(tokenOpts);
    }

    let child: ChildProcess | undefined;
    let port = 0;
    for (let attempt = 1; child === undefined; attempt++) {
      port = await freePort();
      writeFileSync(
        configPath,
        configYaml({
          port,
          storageDir,
          accessLog: opts.accessLog ?? false,
          jsonLog: opts.jsonLog ?? false,
          htpasswdPath,
          token,
          tls: opts.tls,
        }),
      );
      try {
        child = await launch(bin, configPath, logFile, port, opts.cpus, opts.tls);
      } catch (err) {
        if (!(err instanceof PortInUse) || attempt >= PORT_ATTEMPTS) {
          throw err instanceof PortInUse
            ? new Error(
                `docker-registry could not bind a free port after ${attempt} attempts:\n${err.message}`,
              )
            : err;
        }
      }
    }

    const running = child;
    let stopping: Promise<void> | undefined;
    const result: RunningDistribution = {
      host: `127.0.0.1:${port}`,
      url: `${opts.tls ? "https" : "http"}://127.0.0.1:${port}`,
      auth: opts.auth,
      storageDir,
      logFile,
      pid: running.pid!,
      stop() {
        stopping ??= (async () => {
          await killChild(running);
          await token?.close();
          removeTmpDir(dir);
        })();
        return stopping;
      },
    };
    if (username !== undefined) result.username = username;
    if (password !== undefined) result.password = password;
    if (token !== undefined) result.token = token;
    return result;
  } catch (err) {
    await token?.close();
    removeTmpDir(dir);
    throw err;
  }
}

/** The JSON-serialisable subset of a running registry, as handed to tests by the global setup. */
export function toRegistryInfo(r: RunningDistribution): RegistryInfo {
  const info: RegistryInfo = { host: r.host, url: r.url, auth: r.auth, storageDir: r.storageDir };
  if (r.username !== undefined) info.username = r.username;
  if (r.password !== undefined) info.password = r.password;
  if (r.token) {
    const { realm, service, issuer, requestsUrl } = r.token;
    info.token = { realm, service, issuer, requestsUrl };
  }
  return info;
}
