/**
 * `ferry demo` (npm run demo): ferry's main job end to end on this machine, with nothing installed
 * beyond `npm ci`. Two embedded registries (ferry serve) stand in for two accounts' registries:
 *   1. push a generated multi-platform sample image to the source;
 *   2. copy it to the destination with the engine (digest preserved) and print the report;
 *   3. copy it again: nothing moves; and copy it through the Step Functions workflow, run locally;
 *   4. pull it into an OCI layout and unpack linux/amd64 into a root filesystem;
 *   5. verify every manifest and blob digest at the destination (and with skopeo, when installed:
 *      FERRY_SKOPEO, else /usr/bin/skopeo).
 * Every check prints ✓ or ✗; any ✗ makes the demo fail (exit 1) after it printed everything.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Command } from "commander";
import { createOciLayoutSink } from "../../shared/archive/oci-layout.ts";
import { extractLayers } from "../../shared/archive/rootfs.ts";
import { RegistryClient } from "../../shared/registry/client.ts";
import { sha256 } from "../../shared/registry/digest.ts";
import { FerryError } from "../../shared/registry/errors.ts";
import { parseManifest, referencedBlobs } from "../../shared/registry/manifest.ts";
import { sampleMultiPlatform, writeSample } from "../../shared/sample/image.ts";
import { TransferEngine } from "../../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../../shared/transfer/registry-endpoints.ts";
import { formatReport } from "../../shared/transfer/report.ts";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("run ferry's main job locally: embedded registries, a sample image, copy, pull, verify")
    .option("--keep", "keep the temporary registries' storage and the pulled files")
    .action(async (flags: { keep?: boolean }) => {
      await runDemo(flags.keep === true);
    });
}

export async function runDemo(keep: boolean): Promise<void> {
  const { startRegistry } = await import("../../serve/index.ts");
  const work = mkdtempSync(join(tmpdir(), "ferry-demo-"));
  const say = (s: string) => process.stdout.write(`${s}\n`);
  const src = await startRegistry({ root: join(work, "registry-a") });
  const dst = await startRegistry({ root: join(work, "registry-b") });
  const client = new RegistryClient();
  // A check that fails is printed with ✗ and reported at the end: the demo then exits 1.
  const failed: string[] = [];
  const check = (ok: boolean, what: string): string => {
    if (!ok) failed.push(what);
    return ok ? "✓" : "✗";
  };
  try {
    say(
      `ferry demo — two embedded registries: ${src.host} (source) and ${dst.host} (destination); files in ${work}\n`,
    );

    const { images, index } = await sampleMultiPlatform("ferry-demo");
    const srcRef = { registry: src.host, repository: "demo/app", tag: "1.0" };
    await writeSample(new RegistrySink(client, srcRef), images, index, "1.0");
    say(`1. pushed sample image ${src.host}/demo/app:1.0  ${index.digest}  (linux/amd64, linux/arm64/v8)`);

    const engine = new TransferEngine();
    const dstRepo = { registry: dst.host, repository: "promoted/app" };
    const first = await engine.copy(new RegistrySource(client, srcRef), new RegistrySink(client, dstRepo), {
      tags: ["1.0", "stable"],
    });
    say(`2. copied to ${dst.host}/promoted/app:1.0 (+ tag stable)\n${indent(formatReport([first]))}`);
    if (first.digest !== index.digest)
      throw new FerryError("DEMO", `digest changed in transit: ${first.digest}`);

    const again = await new TransferEngine().copy(
      new RegistrySource(client, srcRef),
      new RegistrySink(client, dstRepo),
      { tags: ["1.0"] },
    );
    const idle = again.upToDate && again.totals.bytesSent === 0;
    say(
      `3. copied again: ${again.upToDate ? "already up to date" : "NOT up to date"}, ${again.totals.bytesSent} blob bytes moved ${check(idle, "the second copy moved bytes")}`,
    );

    // the same copy through the serverless workflow definition, run locally, with staging on disk
    const [{ runCopyWorkflow }, { FsStagingStore }] = await Promise.all([
      import("../../shared/workflow/local-runner.ts"),
      import("../../shared/staging/fs.ts"),
    ]);
    const wf = await runCopyWorkflow(
      { source: `${src.host}/demo/app:1.0`, destination: `${dst.host}/via-workflow/app:1.0` },
      {
        deps: {
          staging: new FsStagingStore(join(work, "staging")),
          client,
          // tiny budgets so that even the sample's small layers (over 300 bytes) go through staging
          defaults: { directMaxBytes: 300, stepBytes: 1024, partBytes: 1024, chunkBytes: 1024 },
        },
      },
    );
    if (wf.status !== "SUCCEEDED") throw new FerryError("DEMO", `workflow failed: ${wf.error}: ${wf.cause}`);
    const wfOut = wf.output as { digest: string; blobs: Record<string, number> };
    say(
      `   through the Step Functions workflow (run locally, staging on disk): ${dst.host}/via-workflow/app:1.0 ` +
        `${wfOut.digest === index.digest ? "same digest" : `DIFFERENT digest ${wfOut.digest}`} ${check(wfOut.digest === index.digest, "the workflow's copy has another digest")}, ${wfOut.blobs.total} blobs`,
    );

    const ociDir = join(work, "oci");
    const ociSink = await createOciLayoutSink(ociDir);
    const ociReport = await new TransferEngine().copy(
      new RegistrySource(client, { ...dstRepo, tag: "1.0" }),
      ociSink,
      { tags: ["1.0"] },
    );
    await ociSink.close(); // index.json is written when the sink commits
    const rootfs = join(work, "rootfs");
    const amd64 = images[0]!;
    const parsed = parseManifest(amd64.manifest.bytes, amd64.manifest.mediaType);
    if (parsed.kind !== "manifest") throw new FerryError("DEMO", "sample is not an image manifest");
    const summary = await extractLayers(
      rootfs,
      parsed.layers.map((desc) => ({ desc, open: () => client.getBlob(dstRepo, desc) })),
    );
    const hello = readFileSync(join(rootfs, "usr/share/ferry.txt"), "utf8").trim();
    const whitedOut = !existsSync(join(rootfs, "tmp/scratch.txt"));
    const whiteout = `${whitedOut ? "removed by the upper layer's whiteout" : "still there"} ${check(whitedOut, "a whiteout was not applied")}`;
    say(
      `4. pulled to oci:${ociDir}:1.0 (${ociReport.blobs.length} blobs) and unpacked linux/amd64 into ${rootfs}`,
    );
    say(
      `   ${summary.files} files, ${summary.symlinks} symlink(s), ${summary.whiteouts} whiteout(s); usr/share/ferry.txt says "${hello}"; tmp/scratch.txt ${whiteout}`,
    );

    let checked = 0;
    for (const img of images) {
      const got = await client.getManifest({ ...dstRepo, digest: img.manifest.digest });
      if (sha256(got.bytes) !== img.manifest.digest)
        throw new FerryError("DEMO", `manifest ${img.manifest.digest} differs`);
      for (const d of referencedBlobs(parseManifest(got.bytes, got.mediaType))) {
        await client.readBlob(dstRepo, d, 1 << 30); // verified while streaming
        checked++;
      }
    }
    say(
      `5. verified at the destination: index, ${images.length} manifests and ${checked} blob references, every digest matches`,
    );
    const skopeo = process.env.FERRY_SKOPEO || "/usr/bin/skopeo";
    if (existsSync(skopeo)) {
      // asynchronously: the registries run in this process
      const { stdout: raw } = await promisify(execFile)(
        skopeo,
        ["inspect", "--raw", "--tls-verify=false", `docker://${dst.host}/promoted/app:stable`],
        { encoding: "buffer" },
      );
      say(
        `   skopeo (an independent client) reads ${dst.host}/promoted/app:stable as ${sha256(raw)} ${check(sha256(raw) === index.digest, "skopeo reads another digest")}`,
      );
    }
    if (failed.length)
      throw new FerryError("DEMO", `${failed.length} check(s) failed (✗ above): ${failed.join("; ")}`);
    say("\ndone: no Docker daemon or client was used.");
  } finally {
    await client.close();
    await src.close();
    await dst.close();
    if (!keep) rmSync(work, { recursive: true, force: true });
  }
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => `   ${l}`)
    .join("\n");
}
