/**
 * Bulk runs on the command line — `ferry copy --from-file` and `ferry sync` — with the real `ferry`
 * executable against real registries, a recording (or refusing) proxy in front of the destination:
 *   - dry runs list every image (copy, up to date, skipped, refused) with the bytes that would move, and
 *     the destination sees reads only; the real run then moves exactly those bytes;
 *   - `--failures FILE` lists exactly the images that failed, in the `--from-file` format, and a re-run
 *     with that file copies exactly those;
 *   - `--create-repos` creates missing ECR repositories (a stand-in for ECR's control plane, a proxy
 *     refusing pushes into unknown repositories as ECR does) before the first push, and never in a dry run.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Repository } from "../../../shared/registry/reference.ts";
import { imageOf, type SampleImage, seededBlob, writeSample } from "../../../shared/sample/image.ts";
import { parseCopyList } from "../../../shared/transfer/copy-list.ts";
import type { DryRunImage, DryRunTotals } from "../../../shared/transfer/dry-run.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import type { ImageReport } from "../../../shared/transfer/report.ts";
import { ecrEnv, startEcrStandIn } from "../../helpers/ecr.ts";
import { type Fault, type ProxiedRequest, startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { clientFor, registries } from "../../helpers/registry-client.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
const anon = clientFor(regs.anon);
afterAll(() => anon.close());
// The sources, so the options are there even when dist/ferry.mjs predates them (npm test rebuilds it).
const env = { FERRY_FROM_SOURCE: "1" };
const WRITES = new Set(["PUT", "POST", "PATCH", "DELETE"]);
const amd64 = { os: "linux", architecture: "amd64" };

let n = 0;
const unique = (p: string) => `${p}${process.pid}${Date.now().toString(36)}${++n}`;

async function layer(seed: string, size: number) {
  const blob = await seededBlob(seed, size);
  return { blob, diffId: blob.desc.digest };
}

async function push(repo: Repository, tag: string, image: SampleImage) {
  await writeSample(new RegistrySink(anon, repo), [image], undefined, tag);
}

/** Bytes of every blob of these images (config and layers), each digest once. */
function bytesOf(...images: SampleImage[]): number {
  const seen = new Map<string, number>();
  for (const i of images) for (const b of [i.config, ...i.layers]) seen.set(b.desc.digest, b.desc.size);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

function listFile(lines: string[]): string {
  const file = join(tmpDir("ferry-bulk-"), "list.txt");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

describe("ferry copy --from-file --dry-run", () => {
  it("lists every image with what it would move, writes nothing; the real run moves exactly those bytes", async () => {
    const ns = unique("dry");
    const src = (r: string) => ({ registry: regs.anon.host, repository: `${ns}/${r}` });
    const dst = (r: string) => ({ registry: regs.anon.host, repository: `${ns}-dst/${r}` });
    const shared = await layer(`${ns}-shared`, 40_000);
    const m = await layer(`${ns}-m`, 10_000);
    const x = imageOf([shared, await layer(`${ns}-x`, 30_000)], amd64);
    const y = imageOf([shared, await layer(`${ns}-y`, 20_000), m], amd64);
    const z = imageOf([await layer(`${ns}-z`, 5_000)], amd64);
    const v = imageOf([m], amd64);
    await push(src("x"), "v1", x);
    await push(src("y"), "v1", y);
    await push(src("z"), "v1", z);
    // the destination already has: z (up to date), y's layer m (in d/y, under another tag), w pointing elsewhere
    await push(dst("z"), "v1", z);
    await push(dst("y"), "old", v);
    await push(dst("w"), "v1", v);

    const proxy = await startFaultProxy(regs.anon.url, () => undefined);
    try {
      const to = (r: string) => `${proxy.host}/${ns}-dst/${r}:v1`;
      const list = listFile([
        `# the migration`,
        `${regs.anon.host}/${ns}/x:v1 ${to("x")}`,
        `${regs.anon.host}/${ns}/y:v1 ${to("y")}`,
        `${regs.anon.host}/${ns}/z:v1 ${to("z")}`,
        `${regs.anon.host}/${ns}/x:v1 ${to("w")}`,
      ]);
      const failures = join(tmpDir("ferry-bulk-"), "refused.txt");

      // with --no-clobber, w is refused: a dry run that finds a refusal exits 1, after its report
      const strict = await ferry(
        ["copy", "--from-file", list, "--dry-run", "--no-clobber", "--json", "--failures", failures],
        env,
      );
      expect(strict.code, strict.stderr).toBe(1);
      expect(strict.stderr).toMatch(/dry run: 1 of 4 image\(s\) would not be copied/);
      const report = JSON.parse(strict.stdout) as {
        dryRun: boolean;
        images: DryRunImage[];
        totals: DryRunTotals;
      };
      expect(report.dryRun).toBe(true);
      expect(report.images.map((i) => [i.destination, i.action])).toEqual([
        [to("x"), "copy"],
        [to("y"), "copy"],
        [to("z"), "up-to-date"],
        [to("w"), "refused"],
      ]);
      const [ix, iy, iz, iw] = report.images as [DryRunImage, DryRunImage, DryRunImage, DryRunImage];
      // x moves all its blobs; y finds m present and mounts the shared layer x brings
      expect(ix.blobs).toEqual({ total: 3, present: 0, mount: 0, copy: 3 });
      expect(ix.bytes).toBe(bytesOf(x));
      expect(ix.digest).toBe(x.manifest.digest);
      expect(iy.blobs).toEqual({ total: 4, present: 1, mount: 1, copy: 2 });
      expect(iy.bytes).toBe(y.config.desc.size + y.layers[1]!.desc.size);
      expect(iz.digest).toBe(z.manifest.digest);
      expect(iw.reason).toMatch(new RegExp(`already points to ${v.manifest.digest}.*--no-clobber`));
      expect(report.totals).toMatchObject({ images: 4, copy: 2, upToDate: 1, refused: 1, failed: 0 });
      expect(report.totals.bytes).toBe(ix.bytes + iy.bytes);
      // the refused line, as a re-run list
      expect(parseCopyList(readFileSync(failures, "utf8"), failures).map((l) => l.destination)).toEqual([
        to("w"),
      ]);

      // without --no-clobber, and as a table: w would be written by mounts only
      const table = await ferry(["copy", "--from-file", list, "--dry-run"], env);
      expect(table.code, table.stderr).toBe(0);
      const lines = table.stdout.trim().split("\n");
      expect(lines[0]).toMatch(/^dry run: nothing was written/);
      expect(lines.filter((l) => /^(copy|up-to-date|skipped|refused|failed) /.test(l))).toHaveLength(4);
      expect(lines.find((l) => l.includes(to("w")))).toMatch(/3 blob\(s\): 0 present, 3 to mount, 0 to copy/);
      expect(lines.at(-1)).toMatch(
        /4 image\(s\): 3 to copy, 1 up to date, 0 skipped, 0 refused, 0 failed; 5 blob\(s\)/,
      );

      // the destination saw reads only, and did see them (a HEAD for every blob decided)
      expect(proxy.requests.filter((r) => WRITES.has(r.method))).toEqual([]);
      expect(
        proxy.requests.filter((r) => r.method === "HEAD" && r.url.includes("/blobs/")).length,
      ).toBeGreaterThanOrEqual(7);
      expect(await anon.headManifest({ ...dst("x"), tag: "v1" })).toBeUndefined();

      // the real run sends exactly the bytes the dry run announced
      const real = await ferry(["copy", "--from-file", list, "--json", "-q"], env);
      expect(real.code, real.stderr).toBe(0);
      const done = JSON.parse(real.stdout) as { images: ImageReport[]; failures: unknown[] };
      expect(done.failures).toEqual([]);
      const sent = done.images.reduce((a, i) => a + i.totals.bytesSent, 0);
      expect(sent).toBe(report.totals.bytes);
      expect(sent).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it("usage: --failures needs --from-file; --dry-run refuses file destinations and --compress", async () => {
    const a = await ferry(["copy", "a.io/x:1", "b.io/y:1", "--failures", "/tmp/x"], env);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--failures lists the failed lines of a --from-file run/);
    const b = await ferry(["copy", "a.io/x:1", "oci:/tmp/nowhere", "--dry-run"], env);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--dry-run decides copies to registries/);
    const c = await ferry(["copy", "a.io/x:1", "b.io/y:1", "--dry-run", "--compress", "gzip"], env);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--dry-run does not predict --compress/);
    const d = await ferry(["copy", "a.io/x:1", "b.io/y:1", "--create-repos"], env);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/no destination is an ECR registry/);
    for (const r of [a, b, c, d]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("ferry sync --dry-run", () => {
  it("lists every image and tag the migration would copy, skip or find up to date; reads only", async () => {
    const ns = unique("sdry");
    const src = (r: string) => ({ registry: regs.anon.host, repository: `${ns}/${r}` });
    const dst = (r: string) => ({ registry: regs.anon.host, repository: `m-${ns}/${r}` });
    const images: Record<string, SampleImage> = {};
    for (const [repo, tag, size] of [
      ["app", "1.0.0", 3000],
      ["app", "1.1.0", 4000],
      ["app", "2.0.0", 5000],
      ["lib", "0.1.0", 6000],
    ] as const) {
      images[`${repo}:${tag}`] = imageOf([await layer(`${ns}-${repo}-${tag}`, size)], amd64);
      await push(src(repo), tag, images[`${repo}:${tag}`]!);
    }
    await push(dst("app"), "1.0.0", images["app:1.0.0"]!); // up to date
    await push(dst("lib"), "0.1.0", images["app:1.0.0"]!); // another image under an immutable tag

    const proxy = await startFaultProxy(regs.anon.url, () => undefined);
    try {
      const config = join(tmpDir("ferry-sync-"), "sync.json");
      writeFileSync(
        config,
        JSON.stringify({
          source: `${regs.anon.host}/${ns}`,
          destination: `${proxy.host}/m-${ns}`,
          tags: { immutable: ["0\\..*"] },
        }),
      );
      const r = await ferry(["sync", config, "--dry-run", "--json"], env);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { images: DryRunImage[]; totals: DryRunTotals };
      const to = (repo: string, tag: string) => `${proxy.host}/m-${ns}/${repo}:${tag}`;
      expect(out.images.map((i) => [i.destination, i.action]).sort()).toEqual(
        [
          [to("app", "1.0.0"), "up-to-date"],
          [to("app", "1.1.0"), "copy"],
          [to("app", "2.0.0"), "copy"],
          [to("lib", "0.1.0"), "skipped"],
        ].sort(),
      );
      expect(out.images.find((i) => i.action === "skipped")!.reason).toMatch(
        /immutable tag already at the destination/,
      );
      expect(out.totals.bytes).toBe(bytesOf(images["app:1.1.0"]!, images["app:2.0.0"]!));
      expect(proxy.requests.filter((q) => WRITES.has(q.method))).toEqual([]);
      expect(proxy.requests.length).toBeGreaterThan(0);

      // the migration itself then moves those bytes
      const real = await ferry(["sync", config, "--json"], env);
      expect(real.code, real.stderr).toBe(0);
      expect(JSON.parse(real.stdout)).toMatchObject({
        images: 3,
        succeeded: 3,
        skipped: 1,
        bytesSent: out.totals.bytes,
      });
    } finally {
      await proxy.close();
    }
  });
});

/** A proxy refusing (403 DENIED) every write into the repositories `refuse` matches, while `on()`. */
async function refusingProxy(refuse: RegExp) {
  let refusing = true;
  const proxy = await startFaultProxy(regs.anon.url, (r: ProxiedRequest): Fault => {
    if (!refusing || !WRITES.has(r.method) || !refuse.test(r.url)) return undefined;
    return {
      kind: "status",
      status: 403,
      body: JSON.stringify({
        errors: [{ code: "DENIED", message: "requested access to the resource is denied" }],
      }),
    };
  });
  return { proxy, stop: () => (refusing = false) };
}

describe("failure lists (--failures FILE) and their re-run (--from-file FILE)", () => {
  it("copy --from-file: the list holds exactly the failed lines, with their errors; its re-run copies exactly those", async () => {
    const ns = unique("fail");
    const names = ["a", "b", "c", "d"];
    for (const r of names)
      await push(
        { registry: regs.anon.host, repository: `${ns}/${r}` },
        "v1",
        imageOf([await layer(`${ns}-${r}`, 2000)], amd64),
      );
    const { proxy, stop } = await refusingProxy(new RegExp(`/v2/${ns}-dst/(b|d)/`));
    try {
      const line = (r: string) => `${regs.anon.host}/${ns}/${r}:v1 ${proxy.host}/${ns}-dst/${r}:v1`;
      const list = listFile(names.map(line));
      const failures = join(tmpDir("ferry-bulk-"), "failed.txt");
      const first = await ferry(["copy", "--from-file", list, "--failures", failures, "-q"], env);
      expect(first.code).toBe(1);
      expect(first.stderr).toMatch(/2 of 4 image\(s\) failed/);
      const text = readFileSync(failures, "utf8");
      const failed = parseCopyList(text, failures);
      expect(failed.map((l) => `${l.source} ${l.destination}`)).toEqual([line("b"), line("d")]);
      // each line's error as a comment right above it; no upload session, query string or credential
      const lines = text.split("\n");
      for (const l of failed) expect(lines[l.line - 2]).toMatch(/^# .*403.*DENIED/);
      expect(text).not.toMatch(/\/blobs\/uploads\/[0-9a-f-]{8,}|_state=|Authorization/i);

      stop();
      proxy.requests.length = 0;
      const again = join(tmpDir("ferry-bulk-"), "again.txt");
      const second = await ferry(["copy", "--from-file", failures, "--failures", again, "-q"], env);
      expect(second.code, second.stderr).toBe(0);
      // exactly the failed images were copied: requests for b and d only, one tag PUT each
      const repos = new Set(
        proxy.requests.map((q) => /^\/v2\/(.+?)\/(blobs|manifests)\//.exec(q.url)?.[1]).filter(Boolean),
      );
      expect([...repos].sort()).toEqual([`${ns}-dst/b`, `${ns}-dst/d`]);
      const tagPuts = proxy.requests.filter((q) => q.method === "PUT" && /\/manifests\/v1$/.test(q.url));
      expect(tagPuts.map((q) => q.url).sort()).toEqual([
        `/v2/${ns}-dst/b/manifests/v1`,
        `/v2/${ns}-dst/d/manifests/v1`,
      ]);
      // a run with no failure leaves a list with nothing to re-run
      expect(parseCopyList(readFileSync(again, "utf8"), again)).toEqual([]);
      expect(readFileSync(again, "utf8")).toMatch(/^# ferry copy --from-file .*: 0 of 2 image\(s\) failed/);
    } finally {
      await proxy.close();
    }
  });

  it("sync: the migration's failed images (also when it fails as a whole); the list re-runs with copy --from-file", async () => {
    const ns = unique("sfail");
    for (const r of ["ok", "bad"])
      await push(
        { registry: regs.anon.host, repository: `${ns}/${r}` },
        "1.0.0",
        imageOf([await layer(`${ns}-${r}`, 3000)], amd64),
      );
    const { proxy, stop } = await refusingProxy(new RegExp(`/v2/m-${ns}/bad/`));
    try {
      const config = join(tmpDir("ferry-sync-"), "sync.json");
      writeFileSync(
        config,
        JSON.stringify({ source: `${regs.anon.host}/${ns}`, destination: `${proxy.host}/m-${ns}` }),
      );
      const failures = join(tmpDir("ferry-sync-"), "failed.txt");
      const r = await ferry(["sync", config, "--failures", failures, "-q"], env);
      expect(r.code).toBe(1); // no failure tolerated: the migration fails, its list is written anyway
      expect(r.stderr).toMatch(/ExceedToleratedFailureThreshold/);
      const text = readFileSync(failures, "utf8");
      expect(parseCopyList(text, failures).map((l) => `${l.source} ${l.destination}`)).toEqual([
        `${regs.anon.host}/${ns}/bad:1.0.0 ${proxy.host}/m-${ns}/bad:1.0.0`,
      ]);
      expect(text).toMatch(/^# ferry bulk migration .*: 1 of 2 image\(s\) failed/);
      expect(text).toMatch(/\n# .*DENIED.*\n[^#]/);

      stop();
      proxy.requests.length = 0;
      const again = await ferry(["copy", "--from-file", failures, "-q"], env);
      expect(again.code, again.stderr).toBe(0);
      const touched = new Set(
        proxy.requests.map((q) => /^\/v2\/(.+?)\/(blobs|manifests)\//.exec(q.url)?.[1]).filter(Boolean),
      );
      expect([...touched]).toEqual([`m-${ns}/bad`]);
      expect(
        await anon.headManifest({ registry: regs.anon.host, repository: `m-${ns}/bad`, tag: "1.0.0" }),
      ).toBeDefined();
    } finally {
      await proxy.close();
    }
  });
});

describe("ferry copy --create-repos (ECR)", () => {
  it("creates the missing repositories before their first push, not the existing one; a dry run only asks", async () => {
    const ns = unique("ecr");
    const ecr = await startEcrStandIn([`${ns}/kept`]);
    const proxy = await startFaultProxy(regs.anon.url, ecr.registryRule);
    try {
      for (const r of ["a", "b", "kept", "later"])
        await push(
          { registry: regs.anon.host, repository: `${ns}-src/${r}` },
          "v1",
          imageOf([await layer(`${ns}-${r}`, 2500)], amd64),
        );
      const line = (r: string) => `${regs.anon.host}/${ns}-src/${r}:v1 ${proxy.host}/${ns}/${r}:v1`;
      const list = listFile(["a", "b", "kept"].map(line));
      const kind = ["--registry-kind", `${proxy.host}=ecr`];
      const awsEnv = { ...env, ...ecrEnv(ecr) };

      // without the flag: ECR refuses the new repositories, and ferry says what to do
      const refused = await ferry(["copy", "--from-file", list, ...kind, "-q"], awsEnv);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/2 of 3 image\(s\) failed/);
      expect(refused.stderr).toMatch(/NAME_UNKNOWN.*add --create-repos/);
      expect(ecr.requests).toEqual([]);

      ecr.events.length = 0;
      const r = await ferry(["copy", "--from-file", list, ...kind, "--create-repos", "-q"], awsEnv);
      expect(r.code, r.stderr).toBe(0);
      const creates = ecr.requests
        .filter((q) => q.op === "CreateRepository")
        .map((q) => q.body.repositoryName);
      expect(creates.sort()).toEqual([`${ns}/a`, `${ns}/b`]);
      for (const name of [`${ns}/a`, `${ns}/b`]) {
        const created = ecr.events.indexOf(`ecr:CreateRepository ${name}`);
        const firstPush = ecr.events.findIndex(
          (e) => e === `registry:POST ${name}` || e === `registry:PUT ${name}`,
        );
        expect(created, name).toBeGreaterThanOrEqual(0);
        expect(firstPush, name).toBeGreaterThan(created);
      }
      expect(ecr.repositories.get(`${ns}/a`)).toMatchObject({
        imageTagMutability: "MUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: { encryptionType: "AES256" },
      });

      // a dry run says which repository would be created, and creates none
      ecr.requests.length = 0;
      proxy.requests.length = 0;
      const dry = await ferry(
        ["copy", "--from-file", listFile([line("later")]), ...kind, "--create-repos", "--dry-run", "--json"],
        awsEnv,
      );
      expect(dry.code, dry.stderr).toBe(0);
      const out = JSON.parse(dry.stdout) as { images: DryRunImage[]; totals: DryRunTotals };
      expect(out.images[0]).toMatchObject({ action: "copy", createsRepository: true });
      expect(out.totals.repositories).toBe(1);
      expect(ecr.requests.map((q) => q.op)).toEqual(["DescribeRepositories"]);
      expect(ecr.repositories.has(`${ns}/later`)).toBe(false);
      expect(proxy.requests.filter((q) => WRITES.has(q.method))).toEqual([]);
    } finally {
      await proxy.close();
      await ecr.close();
    }
  });
});
