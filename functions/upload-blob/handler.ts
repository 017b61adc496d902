/**
 * Copy workflow (Task states CopyBlobDirect, MountBlob, UploadBlob): direct copy, cross-repository
 * mount, or one bounded step of staging → destination chunked PATCH (`action` in the event).
 */
import { uploadBlob } from "../../shared/workflow/steps/upload.ts";
import { lambda } from "../lib/handler.ts";
import { stepDeps } from "../lib/runtime.ts";

export const handler = lambda("upload-blob", uploadBlob, () => stepDeps());
