/**
 * oci-archive: an OCI image layout in a tar, as skopeo's `oci-archive:` transport reads and writes it.
 *
 * Reading is docker-archive.ts's (`openDockerArchive(file, {transport: "oci-archive"})`): the tar is
 * indexed and read in place. Writing does what skopeo does (containers/image oci/archive): the image goes
 * into an OCI layout in a temporary directory beside `file` (the OCI layout sink: blobs verified while
 * streaming, indexes and tags as for `oci:`), and `close()` packs that directory into a temporary tar
 * renamed to `file`. A failure, or an exit before close, removes both: no partial output.
 */

import { createReadStream, createWriteStream } from "node:fs";
import { readdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { ImageSink } from "../transfer/types.ts";
import { ArchiveError } from "./errors.ts";
import { removeAtExit, tempNameFor } from "./io.ts";
import { createOciLayoutSink, OCI_LAYOUT_FILE } from "./oci-layout.ts";
import { addEntry, openEntry } from "./tar-pack.ts";

export interface OciArchiveSink extends ImageSink {
  readonly file: string;
  abort(reason?: Error): Promise<void>;
}

/** Writes images (single- or multi-platform, tagged in index.json) as an oci-archive tar at `file`. */
export async function createOciArchiveSink(file: string): Promise<OciArchiveSink> {
  const target = resolvePath(file);
  const name = `oci-archive:${file}`;
  const layoutDir = tempNameFor(target, "oci");
  const tarFile = tempNameFor(target, "archive");
  removeAtExit(layoutDir, true);
  removeAtExit(tarFile, true);
  const layout = await createOciLayoutSink(layoutDir);
  let done = false;

  const cleanUp = async () => {
    await rm(layoutDir, { recursive: true, force: true });
    await rm(tarFile, { force: true });
    removeAtExit(layoutDir, false);
    removeAtExit(tarFile, false);
  };

  const sink: OciArchiveSink = {
    name,
    file: target,
    acceptsIndex: true,
    hasBlob: (desc) => layout.hasBlob(desc),
    putBlob: (desc, open, opts) => layout.putBlob(desc, open, opts),
    putBlobStream: (mediaType, stream, progress) => layout.putBlobStream!(mediaType, stream, progress),
    putManifest: (m, tag) => layout.putManifest(m, tag),
    tagDigest: (tag) => layout.tagDigest!(tag),
    async close() {
      if (done) return;
      done = true;
      try {
        await layout.close?.();
        await packLayout(layoutDir, tarFile);
        await rename(tarFile, target);
      } catch (err) {
        await cleanUp();
        throw err instanceof ArchiveError || !(err as { code?: string }).code
          ? err
          : new ArchiveError(`${name}: cannot write the archive (${(err as Error).message})`, { cause: err });
      }
      await cleanUp();
    },
    async abort(reason) {
      done = true;
      await layout.abort(reason);
      await cleanUp();
    },
  };
  return sink;
}

/**
 * Packs a layout directory into a tar: `oci-layout`, `index.json`, then `blobs/` (the layout's own names:
 * readers index the tar, the order is free). Entries have mode 0644/0755 and mtime 0, so the same layout
 * gives the same bytes.
 */
async function packLayout(dir: string, out: string): Promise<void> {
  const pack = tar.pack();
  const written = pipeline(pack as unknown as Readable, createWriteStream(out, { flags: "wx", mode: 0o644 }));
  written.catch(() => {});
  const add = async (rel: string) => {
    const path = join(dir, rel);
    const st = await stat(path);
    if (st.isDirectory()) {
      await addEntry(pack, { name: `${rel}/`, type: "directory", mode: 0o755, mtime: new Date(0) });
      for (const child of (await readdir(path)).sort()) await add(`${rel}/${child}`);
      return;
    }
    await pipeline(
      createReadStream(path),
      openEntry(pack, { name: rel, size: st.size, mode: 0o644, mtime: new Date(0), type: "file" }),
    );
  };
  try {
    for (const rel of [OCI_LAYOUT_FILE, "index.json", "blobs"]) await add(rel);
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => {});
    throw err;
  }
  await written;
}
