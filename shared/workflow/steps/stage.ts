/**
 * Step 2a, StageBlob — one run of the stage loop (shared/transfer/staged.ts `stageBlob`): at most
 * `job.stepBytes` of a big blob from the source into staging, verified before the staged object is
 * completed. This step validates its event, checks the source is allowed, and gives the piece its place
 * in staging and its records.
 */
import { parseRepository } from "../../registry/reference.ts";
import { getJson, putJson, type StagedPart } from "../../staging/types.ts";
import { stageBlob as stageRun } from "../../transfer/staged.ts";
import type { StepDeps } from "../deps.ts";
import { dataKey, openKey, partsKey } from "../keys.ts";
import { checkRepositoryAllowed } from "../policy.ts";
import { type OpenRecord, recordOpen } from "../records.ts";
import { StageEventSchema, type StageState, validate } from "../schemas.ts";
import { guard } from "./guard.ts";

export const stageBlob = guard(async (event: unknown, deps: StepDeps): Promise<StageState> => {
  const { job, blob, stage } = validate(StageEventSchema, event, "StageBlob input");
  checkRepositoryAllowed(deps.policy, "sources", job.source);
  const { staging, client } = deps;
  const key = dataKey(job.prefix, blob.digest);
  const parts = partsKey(job.prefix, blob.digest);
  return stageRun(
    client,
    { repo: parseRepository(job.source), name: `${job.source} for ${job.image}` },
    { digest: blob.digest, size: blob.size, mediaType: blob.mediaType },
    {
      staging,
      key,
      parts: {
        get: () => getJson<StagedPart[]>(staging, parts),
        put: (list) => putJson(staging, parts, list),
        delete: () => staging.delete(parts),
      },
      recordedUpload: async () =>
        (await getJson<OpenRecord>(staging, openKey(job.prefix, blob.digest)))?.stage?.uploadId,
      recordOpen: (uploadId) =>
        recordOpen(staging, job.prefix, {
          digest: blob.digest,
          stage: { key, ...(uploadId ? { uploadId } : {}) },
        }),
    },
    stage,
    { stepBytes: job.stepBytes, ...(job.partBytes ? { partBytes: job.partBytes } : {}) },
  );
});
