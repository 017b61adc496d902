/** Shared setup for the workflow tests: sample images on the harness registries, staging, runners. */
import { createHash } from "node:crypto";
import type { RegistryClient } from "../../../shared/registry/client.ts";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import type { Reference } from "../../../shared/registry/reference.ts";
import {
  imageOf,
  indexOf,
  type SampleImage,
  seededBlob,
  tarLayer,
  writeSample,
} from "../../../shared/sample/image.ts";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import type { StepDeps } from "../../../shared/workflow/deps.ts";
import type { LocalRunOptions } from "../../../shared/workflow/local-runner.ts";
import { ALLOW_ANY, type TransferPolicy } from "../../../shared/workflow/policy.ts";
import type { RegistryInfo } from "../../helpers/context.ts";
import { credsFlag, skopeo } from "../../helpers/skopeo.ts";
import { removeTmpDir, tmpDir } from "../../helpers/tmp.ts";

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Budgets that force many steps and parts for a ~2 MiB layer. */
export const TINY = {
  stepBytes: 256 * KiB,
  partBytes: 64 * KiB,
  chunkBytes: 64 * KiB,
  directMaxBytes: 128 * KiB,
};

/**
 * A multi-platform image: per platform, one big seeded layer (`bigSize` bytes, staged) and one small
 * tar layer (direct); the config is direct too. Returns the index and the images.
 */
export async function pushSampleImage(
  client: RegistryClient,
  ref: Reference,
  opts: { bigSize?: number; seed?: string; platforms?: number } = {},
): Promise<{ index: { digest: string }; images: SampleImage[] }> {
  const seed = opts.seed ?? `wf-${ref.repository}`;
  const images: SampleImage[] = [];
  const arches = ["amd64", "arm64"].slice(0, opts.platforms ?? 2);
  for (const [i, arch] of arches.entries()) {
    const big = await seededBlob(`${seed}-${arch}`, (opts.bigSize ?? 2 * MiB) + i * 1234, MediaType.OciLayer);
    const small = await tarLayer([{ name: "etc/arch", content: `${arch}\n` }]);
    images.push(
      imageOf([{ blob: big, diffId: big.desc.digest }, small], { os: "linux", architecture: arch }),
    );
  }
  const index = images.length > 1 ? indexOf(images) : undefined;
  await writeSample(new RegistrySink(client, ref), images, index, ref.tag ?? "v1");
  return { index: index ?? images[0]!.manifest, images };
}

const made: string[] = [];

/** A temporary directory removed by `removeTempDirs()` (vitest workers do not run exit hooks). */
export function tempDir(prefix: string): string {
  const dir = tmpDir(prefix);
  made.push(dir);
  return dir;
}

/** Call from afterAll. */
export function removeTempDirs(): void {
  for (const d of made.splice(0)) removeTmpDir(d);
}

/** Step dependencies with directory staging and no allow-list (ALLOW_ANY), as the local runner has. */
export function fsDeps(
  client: RegistryClient,
  defaults = TINY,
  policy: TransferPolicy = ALLOW_ANY,
): StepDeps & { staging: FsStagingStore } {
  return { staging: new FsStagingStore(tempDir("ferry-staging-")), client, defaults, policy };
}

/**
 * Records a local run: the input of every attempt of every Task state (through `wrapStep`), and the
 * states entered, retried and failed (through `onEvent`). Pass both to the runner: `{ ...rec.hooks }`.
 */
export function recorder() {
  const calls: { state: string; input: unknown; error?: string }[] = [];
  const entered: { state: string; input: unknown }[] = [];
  const retried: string[] = [];
  const failed: { state: string; error: unknown }[] = [];
  const onEvent: LocalRunOptions["onEvent"] = (e) => {
    if (e.type === "StateEntered" && e.state) entered.push({ state: e.state.name, input: e.state.input });
    if (e.type === "StateRetried" && e.state) retried.push(e.state.name);
    if (e.type === "StateFailed" && e.state) failed.push({ state: e.state.name, error: e.Error });
  };
  const wrapStep: LocalRunOptions["wrapStep"] = (state, step) => async (input) => {
    const call: { state: string; input: unknown; error?: string } = { state, input: structuredClone(input) };
    calls.push(call);
    try {
      return await step(input);
    } catch (e) {
      call.error = (e as Error).name;
      throw e;
    }
  };
  /** The input of every attempt of `state`, in order. */
  const inputs = (state: string) =>
    calls.filter((c) => c.state === state).map((c) => c.input as Record<string, unknown>);
  return { calls, entered, retried, failed, inputs, hooks: { onEvent, wrapStep } };
}

/** `skopeo inspect --raw` digest of a reference on a harness registry. */
export async function skopeoDigest(reg: RegistryInfo, ref: string): Promise<string> {
  const raw = await skopeo(
    "inspect",
    "--raw",
    "--tls-verify=false",
    ...credsFlag(reg, "plain"),
    `docker://${ref}`,
  );
  return sha256(Buffer.from(raw));
}

export function hashOf(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}
