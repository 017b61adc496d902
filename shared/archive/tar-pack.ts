/**
 * Writing tars with tar-stream (reading is tar-index.ts): an entry as a Node Writable, and a whole small
 * entry at once. Both archive sinks write through these (docker-archive-sink.ts, oci-archive.ts).
 */
import { Writable } from "node:stream";
import type tar from "tar-stream";
import { ArchiveError } from "./errors.ts";

/** A tar entry's header as tar-stream takes it (fields left out get its defaults). */
export type EntryHeader = Parameters<tar.Pack["entry"]>[0];

/** Adds an entry given whole (`content`; a directory has none) and resolves once tar-stream has taken it. */
export function addEntry(pack: tar.Pack, header: EntryHeader, content?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content === undefined) pack.entry(header, done);
    else pack.entry(header, content, done);
  });
}

/**
 * Opens a file entry of `header.size` bytes as a Node Writable, with backpressure. Its end waits until
 * tar-stream has accepted the whole entry (tar-stream checks the size: too few or too many bytes fail the
 * stream). Throws when the pack is finalised or destroyed.
 */
export function openEntry(pack: tar.Pack, header: EntryHeader): Writable {
  return new EntryWriter(pack, header);
}

/** tar-stream's entry is a streamx stream, not a Node one (the typings say Writable). */
type EntrySink = ReturnType<tar.Pack["entry"]>;

class EntryWriter extends Writable {
  private readonly entry: EntrySink;
  /** Settles when tar-stream calls the entry back: the entry is complete, or failed. */
  private readonly done: Promise<void>;
  private entryError: Error | undefined;
  constructor(pack: tar.Pack, header: EntryHeader) {
    super();
    let settle: (err?: Error | null) => void = () => {};
    this.done = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        if (err) {
          this.entryError = err;
          reject(err);
        } else resolve();
      };
    });
    this.done.catch(() => {});
    this.entry = pack.entry(header, (err) => settle(err));
    // streamx throws an 'error' without a listener; the error reaches us through the callback
    this.entry.on("error", () => {});
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const entry = this.entry;
    if (this.entryError) {
      cb(this.entryError);
      return;
    }
    if (entry.write(chunk)) {
      cb();
      return;
    }
    const cleanup = () => {
      entry.off("drain", onDrain);
      entry.off("close", onClose);
    };
    const onDrain = () => {
      cleanup();
      cb();
    };
    const onClose = () => {
      cleanup();
      cb(this.entryError ?? new ArchiveError("tar entry closed while writing"));
    };
    entry.on("drain", onDrain);
    entry.on("close", onClose);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.entry.end(undefined);
    this.done.then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (err) this.entry.destroy(err);
    cb(err);
  }
}
