/** The registry's on-disk state: blob store, repositories and upload sessions under one root. */
import { BlobStore } from "./blobs.ts";
import { Layout } from "./layout.ts";
import { RepoStore } from "./repos.ts";
import { UploadStore, type UploadStoreOptions } from "./uploads.ts";

export interface Storage {
  layout: Layout;
  blobs: BlobStore;
  repos: RepoStore;
  uploads: UploadStore;
}

/** Creates the directory tree under `root` (if needed) and the stores over it. */
export async function openStorage(root: string, uploadOpts: UploadStoreOptions): Promise<Storage> {
  const layout = new Layout(root);
  await layout.init();
  const blobs = new BlobStore(layout);
  const uploads = new UploadStore(layout, blobs, uploadOpts);
  await uploads.init();
  return { layout, blobs, repos: new RepoStore(layout, blobs), uploads };
}
