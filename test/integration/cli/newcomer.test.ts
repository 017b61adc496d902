/**
 * ferry as a new user meets it, through the built CLI against the real registries: usage errors exit 2
 * (an invalid reference a registry returns does not), a 401 says whether credentials were sent and how to
 * give them, `inspect --platform` and `--config` on a multi-platform image, each verb's `--help` offers
 * only the flags it uses, a sync config is checked key by key, and the report's table and JSON agree.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { formatPlatform } from "../../../shared/registry/manifest.ts";
import { sampleMultiPlatform, writeSample } from "../../../shared/sample/image.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { type Hostile, hostileServer } from "../../helpers/hostile.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
const work = tmpDir("ferry-cli-newcomer-");
/** No credentials from the machine running the tests: an empty Docker config, no FERRY_* variables. */
const env = { DOCKER_CONFIG: work, FERRY_USERNAME: "", FERRY_PASSWORD: "", FERRY_REGISTRY: "" };
const run = (args: string[]) => ferry(args, env);

let sample: Awaited<ReturnType<typeof sampleMultiPlatform>>;
/** The multi-platform sample on the anonymous registry (`:multi`), and each platform alone (`:v1`, `:v2`). */
let repo: string;

beforeAll(async () => {
  sample = await sampleMultiPlatform("newcomer");
  repo = `${regs.anon.host}/${uniqueRepo("newcomer")}`;
  const c = clientFor(regs.anon);
  const [registry, ...path] = repo.split("/");
  const sink = () => new RegistrySink(c, { registry: registry!, repository: path.join("/") });
  await writeSample(sink(), sample.images, sample.index, "multi");
  await writeSample(sink(), [sample.images[0]!], undefined, "v1");
  await writeSample(sink(), [sample.images[1]!], undefined, "v2");
  await c.close();
});

/** One line on stderr, no stack trace. */
function oneLine(stderr: string): string {
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr.trim().split("\n")).toHaveLength(1);
  return stderr.trim();
}

describe("exit codes: 2 for usage, 1 for failures", () => {
  it.each([
    [["inspect", "x/UPPER"], /invalid reference "x\/UPPER".*lowercase/],
    [["tags", "x/UPPER"], /invalid reference/],
    [["copy", "x/UPPER", "y"], /invalid reference.*lowercase/],
    [["copy", "127.0.0.1:1/a:v1", "127.0.0.1:1/b:v1", "--platform", "linux"], /invalid platform "linux"/],
    [["pull", "a b", "oci:/tmp/x"], /invalid reference "a b"/],
    [["push", "oci:/tmp/x", "bad::ref"], /invalid reference/],
    [["copy", "dir:/tmp/x", "y"], /does not read or write "dir:".*or rootfs:$/],
    [["copy", "oci-archive:", "y"], /oci-archive: needs a file/],
    [["inspect", "127.0.0.1:1/a:v1", "--platform", "linux/"], /invalid platform/],
    [["workflow", "copy", "x/UPPER:v1", "127.0.0.1:1/b"], /invalid reference.*lowercase/],
    [["workflow", "copy", "127.0.0.1:1/a:v1", "127.0.0.1:1/b", "--tag", "no tag"], /tags must be valid tags/],
    [
      ["copy", "--workflow", "127.0.0.1:1/a:v1", "127.0.0.1:1/b", "--referrers"],
      /--referrers: not supported by the workflow/,
    ],
  ])("%j is a usage error", async (args, message) => {
    const r = await run(args);
    expect(r.code, r.stderr).toBe(2);
    expect(oneLine(r.stderr)).toMatch(message);
  });

  it("a --from-file line with an invalid reference is a usage error naming the line", async () => {
    const list = join(work, "list.txt");
    writeFileSync(list, `# images\n127.0.0.1:1/a:v1 127.0.0.1:1/b:v1\nBAD/Ref:v1 127.0.0.1:1/c:v1\n`);
    const r = await run(["copy", "--from-file", list]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(/list\.txt:3: invalid reference "BAD\/Ref:v1"/);
  });

  it("an invalid reference a registry returns is the registry's failure: exit 1", async () => {
    // the destination answers the up-to-date check with a Docker-Content-Digest that is no digest
    const hostile: Hostile = await hostileServer((req, res) => {
      if (req.method === "HEAD" && req.url.includes("/manifests/"))
        res.writeHead(200, { "docker-content-digest": "sha256:NOT-A-DIGEST", "content-length": "2" });
      else res.writeHead(req.url === "/v2/" ? 200 : 404);
      res.end();
    });
    try {
      const r = await run(["copy", `${repo}:v1`, `${hostile.host}/x:v1`]);
      expect(r.code, r.stderr).toBe(1);
      expect(oneLine(r.stderr)).toMatch(/digest/i);
      expect(hostile.seen.some((s) => s.method === "HEAD" && s.url === "/v2/x/manifests/v1")).toBe(true);
    } finally {
      await hostile.close();
    }
  });
});

describe("a 401 says whether credentials were sent, and how to give them", () => {
  const hint = (registry: string, flag: string) =>
    new RegExp(
      `no credentials were sent to ${registry.replace(/\./g, "\\.")}: give them with ${flag} USER:PASSWORD, --authfile FILE.*docker login ${registry.replace(/\./g, "\\.")}.*FERRY_REGISTRY=${registry.replace(/\./g, "\\.")} with FERRY_USERNAME and FERRY_PASSWORD`,
    );
  const refused = (registry: string, flag: string) =>
    new RegExp(
      `the credentials sent to ${registry.replace(/\./g, "\\.")} were refused: check the user name and password \\(from ${flag}, --authfile`,
    );

  it("basic auth, no credentials", async () => {
    const r = await run(["inspect", `${regs.basic.host}/nothing:v1`]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/401 Unauthorized/);
    expect(r.stderr).toMatch(hint(regs.basic.host, "--creds"));
  });

  it("basic auth, a wrong password: refused, and the password is not printed", async () => {
    const r = await run([
      "inspect",
      `${regs.basic.host}/nothing:v1`,
      "--creds",
      `${regs.basic.username}:wr0ngSecret`,
    ]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(refused(regs.basic.host, "--creds"));
    expect(r.stderr).not.toContain("wr0ngSecret");
  });

  it("token auth, a wrong password: the token endpoint's refusal is named after the registry", async () => {
    const r = await run([
      "pull",
      `${regs.token.host}/nothing:v1`,
      `oci:${join(work, "never")}`,
      "--src-creds",
      `${regs.token.username}:wr0ngSecret`,
    ]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(refused(regs.token.host, "--src-creds"));
    expect(r.stderr).not.toContain("wr0ngSecret");
  });

  it("token auth, no credentials for a push (anonymous tokens may only pull)", async () => {
    const r = await run(["copy", `${repo}:v1`, `${regs.token.host}/${uniqueRepo("anon-push")}:v1`]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(hint(regs.token.host, "--dest-creds"));
  });
});

describe("inspect a multi-platform image", () => {
  it("--config without --platform is a usage error listing the platforms, never `null`", async () => {
    const r = await run(["inspect", `${repo}:multi`, "--config"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(oneLine(r.stderr)).toMatch(
      /is a multi-platform image \(linux\/amd64, linux\/arm64\/v8\): choose one with --platform/,
    );
  });

  it("--platform picks that platform's image: its config, its raw manifest, its summary", async () => {
    const arm = sample.images[1]!;
    const config = await run(["inspect", `${repo}:multi`, "--platform", "linux/arm64", "--config"]);
    expect(config.code, config.stderr).toBe(0);
    expect(JSON.parse(config.stdout)).toMatchObject({ architecture: "arm64", variant: "v8", os: "linux" });
    const raw = await run(["inspect", `${repo}:multi`, "--platform", "linux/arm64/v8", "--raw"]);
    expect(createHash("sha256").update(raw.stdout).digest("hex")).toBe(arm.manifest.digest.slice(7));
    const json = await run(["inspect", `${repo}:multi`, "--platform", "linux/amd64", "--json"]);
    const summary = JSON.parse(json.stdout) as { digest: string; reference: string; layers: unknown[] };
    expect(summary.digest).toBe(sample.images[0]!.manifest.digest);
    expect(summary.reference).toContain(`@${sample.images[0]!.manifest.digest}`);
    expect(summary.layers).toHaveLength(sample.images[0]!.layers.length);
  });

  it("a platform the image does not have: usage error naming the ones it has", async () => {
    const r = await run(["inspect", `${repo}:multi`, "--platform", "linux/s390x", "--config"]);
    expect(r.code).toBe(2);
    const has = sample.images.map((i) => formatPlatform(i.platform)).join(", ");
    expect(oneLine(r.stderr)).toContain(`has no linux/s390x image; its platforms: ${has}`);
    const single = await run(["inspect", `${repo}:v1`, "--platform", "linux/arm64"]);
    expect(single.code).toBe(2);
    expect(oneLine(single.stderr)).toMatch(/single-platform image for linux\/amd64, not linux\/arm64/);
  });

  it("--config of a single-platform image needs no --platform", async () => {
    const r = await run(["inspect", `${repo}:v1`, "--config"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ architecture: "amd64" });
  });
});

describe("each verb's --help lists only the flags it uses", () => {
  /** The connection flags of every verb that talks to registries (whatever else addConnectionFlags adds). */
  const CONNECTION = ["--authfile", "--plain-http", "--tls-verify", "--ca-file", "--debug"];
  /** The bulk runs' flags (copy --from-file, sync): docs/migrations.md. */
  const BULK = ["--dry-run", "--failures", "--create-repos"];
  const UPLOADS = ["--chunk-size", "--registry-kind"];
  const TRANSFER = [
    "--platform",
    "--tag",
    "--no-clobber",
    "--referrers",
    "--compress",
    "--concurrency",
    "--force",
    "--json",
    "--quiet",
  ];
  const STAGING = [
    "--staging",
    "--s3-endpoint",
    "--step-bytes",
    "--part-size",
    "--direct-max",
    "--keep-staging",
  ];
  /** Each verb: its own flags, whether it is a registry client, and flags it must not offer. */
  const VERBS: [string[], string[], boolean][] = [
    [
      ["copy"],
      [
        "--from-file",
        ...BULK,
        "--src-creds",
        "--dest-creds",
        ...UPLOADS,
        ...TRANSFER,
        "--workflow",
        ...STAGING,
      ],
      true,
    ],
    [["pull"], ["--src-creds", ...TRANSFER], true],
    [["push"], ["--dest-creds", ...UPLOADS, ...TRANSFER], true],
    [["inspect"], ["--creds", "--raw", "--config", "--json", "--platform"], true],
    [["tags"], ["--creds"], true],
    [["catalog"], ["--creds"], true],
    [
      ["workflow", "copy"],
      [
        "--src-creds",
        "--dest-creds",
        ...UPLOADS,
        ...STAGING,
        "--tag",
        "--platform",
        "--concurrency",
        "--json",
        "--quiet",
      ],
      true,
    ],
    [
      ["workflow", "sync"],
      ["--src-creds", "--dest-creds", ...BULK, ...UPLOADS, ...STAGING, "--json", "--quiet"],
      true,
    ],
    [["sync"], ["--src-creds", "--dest-creds", ...BULK, ...UPLOADS, ...STAGING, "--json", "--quiet"], true],
    [
      ["serve"],
      [
        "--root",
        "--port",
        "--host",
        "--htpasswd",
        "--log",
        "--idle-timeout",
        "--max-uploads",
        "--emulate",
        "--chunk-min-length",
      ],
      false,
    ],
    [["demo"], ["--keep"], false],
  ];

  /** Each credentials flag comes with its certificate-directory flag (the same registry's TLS). */
  const withCertDirs = (flags: string[]) =>
    flags.flatMap((f) =>
      f === "--src-creds"
        ? [f, "--src-cert-dir"]
        : f === "--dest-creds"
          ? [f, "--dest-cert-dir"]
          : f === "--creds"
            ? [f, "--cert-dir"]
            : [f],
    );

  async function flagsOf(verb: string[]): Promise<string[]> {
    const r = await run([...verb, "--help"]);
    expect(r.code, r.stderr).toBe(0);
    const options = r.stdout.slice(r.stdout.indexOf("\nOptions:"));
    return [...options.matchAll(/^ {2}(?:-\w, )?(--[a-z0-9-]+)/gm)]
      .map((m) => m[1]!)
      .filter((f) => f !== "--help");
  }

  it("every verb: exactly its flags", async () => {
    const seen = await Promise.all(VERBS.map(([verb]) => flagsOf(verb)));
    // flags every registry client has, found from the help itself: new connection flags need no edit here
    const clients = seen.filter((_, i) => VERBS[i]![2]);
    const common = clients[0]!.filter((f) => clients.every((flags) => flags.includes(f)));
    expect(common).toEqual(expect.arrayContaining(CONNECTION));
    for (const f of [...UPLOADS, "--creds", "--src-creds", "--dest-creds", "--workflow", ...STAGING, ...BULK])
      expect(common).not.toContain(f);
    for (const [i, [verb, own, client]] of VERBS.entries()) {
      const expected = [...new Set([...withCertDirs(own), ...(client ? common : [])])].sort();
      expect([...seen[i]!].sort(), verb.join(" ")).toEqual(expected);
    }
  });

  it("bench: its own flags and the registry's, --registry-kind but no --chunk-size", async () => {
    const flags = await flagsOf(["bench"]);
    expect(flags).toEqual(
      expect.arrayContaining(["--creds", "--registry-kind", ...CONNECTION, "--scenario"]),
    );
    for (const f of ["--chunk-size", "--src-creds", "--dest-creds", "--workflow"])
      expect(flags).not.toContain(f);
  });
});

describe("a sync config is checked before anything runs", () => {
  it.each([
    [
      { source: "127.0.0.1:1/a", destination: "127.0.0.1:1/b", exlude: ["x"] },
      /exlude: unknown key \(known: source, destination, repositories, include, exclude,/,
    ],
    [
      { source: "127.0.0.1:1/a", destination: "127.0.0.1:1/b", tags: { semvr: "^1" } },
      /tags\.semvr: unknown key \(known: include, exclude, semver, latest, immutable\)/,
    ],
    [
      { source: "127.0.0.1:1/a", destination: "127.0.0.1:1/b", options: { stepbytes: 1 } },
      /options\.stepbytes: unknown key/,
    ],
    [{ source: "127.0.0.1:1/a", destination: "127.0.0.1:1/b", concurrency: 0 }, /concurrency: /],
    [{ destination: "127.0.0.1:1/b" }, /source: is required/],
  ])("%j: a usage error naming the file and the key", async (config, message) => {
    const file = join(work, `sync-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(config));
    const r = await run(["sync", file]);
    expect(r.code, r.stderr).toBe(2);
    const line = oneLine(r.stderr);
    expect(line).toContain(`invalid sync config ${file}: `);
    expect(line).toMatch(message);
  });
});

describe("README's commands do what it says", () => {
  it("ferry copy --workflow <src> <dst> runs the copy-image workflow locally", async () => {
    const dst = `${regs.serve.host}/${uniqueRepo("via-workflow")}:v1`;
    const r = await run(["copy", "--workflow", `${repo}:v1`, dst, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { digest: string; destination: string };
    expect(out.digest).toBe(sample.images[0]!.manifest.digest);
    const check = await run(["inspect", dst, "--json"]);
    expect(JSON.parse(check.stdout).digest).toBe(sample.images[0]!.manifest.digest);
  });
});

describe("the report: the table and --json use the same words and the same counts", () => {
  it("two images sharing a layer, copied in one run to one repository: the layer is copied once", async () => {
    const list = (dst: string) => {
      const file = join(work, `pairs-${Math.random().toString(36).slice(2)}.txt`);
      writeFileSync(file, `${repo}:v1 ${dst}:v1\n${repo}:v2 ${dst}:v2\n`);
      return file;
    };
    // the same run twice, into two other registries that lack these blobs: once as JSON, once as the table
    const json = await run([
      "copy",
      "--from-file",
      list(`${regs.serve.host}/${uniqueRepo("report")}`),
      "--json",
      "--concurrency",
      "1",
    ]);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as {
      images: { blobs: { action: string; shared?: boolean }[]; totals: Record<string, number> }[];
      totals: Record<string, number>;
    };
    const table = await run([
      "copy",
      "--from-file",
      list(`${regs.basic.host}/${uniqueRepo("report")}`),
      `--dest-creds=${regs.basic.username}:${regs.basic.password}`,
      "--concurrency",
      "1",
    ]);
    expect(table.code, table.stderr).toBe(0);

    const unique = new Set(
      sample.images.slice(0, 2).flatMap((i) => [i.config, ...i.layers].map((b) => b.desc.digest)),
    );
    const references = sample.images.slice(0, 2).reduce((n, i) => n + 1 + i.layers.length, 0);
    expect(references - unique.size).toBe(1); // the base layer
    expect(out.totals).toMatchObject({
      images: 2,
      blobs: references,
      copied: unique.size,
      shared: 1,
      skipped: 0,
    });
    const sharedRows = out.images.flatMap((i) => i.blobs).filter((b) => b.shared);
    expect(sharedRows).toHaveLength(1);
    expect(out.images.reduce((n, i) => n + (i.totals.copied ?? 0), 0)).toBe(out.totals.copied);

    const last =
      /(\d+) image\(s\), (\d+) blob\(s\): (\d+) copied, (\d+) mounted, (\d+) skipped \(already present\), (\d+) shared\*/.exec(
        table.stdout,
      );
    expect(last, table.stdout).not.toBeNull();
    const [, images, blobs, copied, mounted, skipped, shared] = last!.map(Number);
    expect({ images, blobs, copied, mounted, skipped, shared }).toEqual({
      images: out.totals.images,
      blobs: out.totals.blobs,
      copied: out.totals.copied,
      mounted: out.totals.mounted,
      skipped: out.totals.skipped,
      shared: out.totals.shared,
    });
    expect(table.stdout).toMatch(/\* shared: handled once, for an earlier image of this run/);
  });
});
