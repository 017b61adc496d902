/** Shared setup for the workflow tests: sample images on the harness registries, staging, runners. */
import { createHash } from "node:crypto";
import { expect } from "vitest";
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
import { S3StagingStore } from "../../../shared/staging/s3.ts";
import type { StagingStore } from "../../../shared/staging/types.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import type { StepDeps } from "../../../shared/workflow/deps.ts";
import type { LocalRunOptions } from "../../../shared/workflow/local-runner.ts";
import { ALLOW_ANY, type TransferPolicy } from "../../../shared/workflow/policy.ts";
import type { RegistryInfo } from "../../helpers/context.ts";
import type { RunningS3 } from "../../helpers/s3.ts";
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
 * Step dependencies with S3 staging on s3rver, through the real S3 client. The test budgets stage in
 * 64 KiB parts, under S3's 5 MiB minimum part size, which the store enforces by default: the minimum is
 * lowered to the part size explicitly (s3rver itself has none).
 */
export function s3Deps(
  s3: RunningS3,
  client: RegistryClient,
  defaults = TINY,
  policy: TransferPolicy = ALLOW_ANY,
): StepDeps & { staging: S3StagingStore } {
  const staging = new S3StagingStore({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    credentials: s3.credentials,
    minPartBytes: defaults.partBytes,
  });
  return { staging, client, defaults, policy };
}

/** The staging stores the staging tests run against. */
export const STAGING_KINDS = ["directory", "s3rver"] as const;
export type StagingKind = (typeof STAGING_KINDS)[number];

/** fsDeps or s3Deps by kind. */
export function stagingDeps(kind: StagingKind, s3: RunningS3, client: RegistryClient): StepDeps {
  return kind === "directory" ? fsDeps(client) : s3Deps(s3, client);
}

/**
 * A store that records its multipart uploads: every upload id created, completed and aborted. Lets a
 * test check that a failed transfer left no upload open on either store, although s3rver can neither
 * list nor abort uploads.
 */
export function trackUploads(store: StagingStore) {
  const created: string[] = [];
  const completed: string[] = [];
  const aborted: string[] = [];
  const tracked = new Proxy(store, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver);
      if (typeof v !== "function") return v;
      if (prop === "createMultipart")
        return async (key: string) => {
          const id = await t.createMultipart(key);
          created.push(id);
          return id;
        };
      if (prop === "completeMultipart")
        return async (...args: Parameters<StagingStore["completeMultipart"]>) => {
          await t.completeMultipart(...args);
          completed.push(args[1]);
        };
      if (prop === "abortMultipart")
        return async (key: string, id: string) => {
          aborted.push(id);
          await t.abortMultipart(key, id);
        };
      return v.bind(t);
    },
  });
  /** Uploads created and neither completed nor aborted. */
  const unsettled = () => created.filter((id) => !completed.includes(id) && !aborted.includes(id));
  return { store: tracked, created, completed, aborted, unsettled };
}

/**
 * Asserts that no multipart upload is left open: each one `t` saw created was completed or aborted,
 * and the backend holds none of them — except, on s3rver, exactly the aborted ones (s3rver has no
 * AbortMultipartUpload; on AWS the staging bucket's lifecycle rule purges what an abort leaves).
 */
export async function expectNoOpenUploads(
  kind: StagingKind,
  staging: StagingStore,
  s3: RunningS3,
  t: ReturnType<typeof trackUploads>,
): Promise<void> {
  expect(t.created.length).toBeGreaterThan(0);
  expect(t.unsettled()).toEqual([]);
  if (kind === "directory") expect(await (staging as FsStagingStore).openUploads()).toEqual([]);
  else
    expect(s3.openUploads().filter((id) => t.created.includes(id))).toEqual([...new Set(t.aborted)].sort());
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
