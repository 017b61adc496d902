/**
 * bcrypt checks off the event loop: a few worker threads, started on the first check, each running
 * one bcryptjs `compareSync` at a time, and a bounded queue in front of them.
 *
 * Why threads: bcryptjs is plain JavaScript, and even its async API computes on the calling thread
 * in slices of up to 100 ms (measured here: 20 concurrent `compare` calls at cost 10 kept the event
 * loop from running a 1 ms timer for 1.5 s). On the main thread a flood of wrong passwords would
 * stall every client; in a worker it costs a core and a queue slot, and the queue is bounded.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * Thrown by {@link BcryptPool.verify} when every worker is busy and the queue is full, or when the
 * pool was closed (`closed`).
 */
export class PoolBusyError extends Error {
  readonly closed: boolean;
  constructor(closed = false) {
    super(closed ? "bcrypt pool closed" : "all bcrypt workers are busy and the queue is full");
    this.name = "PoolBusyError";
    this.closed = closed;
  }
}

// The worker's code, run with `eval`: the same text works from the TypeScript sources and from the
// esbuild bundle of the CLI (a worker file would need an entry point of its own and a path that
// differs between the two). It runs as CommonJS or as a module depending on the parent's flags
// (--input-type), so it uses neither `require` nor `import`: process.getBuiltinModule, and a require
// made for the absolute path of bcryptjs that the parent resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = process.getBuiltinModule("node:worker_threads");
const { createRequire } = process.getBuiltinModule("node:module");
const bcrypt = createRequire(workerData.bcryptjs)(workerData.bcryptjs);
parentPort.on("message", ({ password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch {}
  parentPort.postMessage(ok === true);
});
`;

interface Job {
  password: string;
  hash: string;
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

export class BcryptPool {
  private readonly size: number;
  private readonly maxQueue: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private closed = false;

  /** `size` workers at most (started when needed); at most `maxQueue` checks wait for one. */
  constructor(size: number, maxQueue: number) {
    this.size = size;
    this.maxQueue = maxQueue;
  }

  /** Number of worker threads started (and not exited). */
  get workers(): number {
    return this.slots.length;
  }

  /**
   * Resolves whether `password` matches the bcrypt `hash`. Rejects at once with
   * {@link PoolBusyError} when the queue is full, so a flood cannot grow it without bound.
   */
  verify(password: string, hash: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new PoolBusyError(true));
        return;
      }
      const job: Job = { password, hash, resolve, reject };
      const slot = this.slots.find((s) => s.job === undefined) ?? this.spawn();
      if (slot) this.run(slot, job);
      else if (this.queue.length < this.maxQueue) this.queue.push(job);
      else reject(new PoolBusyError());
    });
  }

  /** Terminates the workers; queued and running checks reject. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new PoolBusyError(true));
    for (const slot of this.slots) {
      slot.job?.reject(new PoolBusyError(true));
      slot.job = undefined;
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot | undefined {
    if (this.slots.length >= this.size) return undefined;
    const bcryptjs = createRequire(import.meta.url).resolve("bcryptjs");
    // No inherited flags: the worker needs none, and some (the CLI's heap settings) are not for it.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { bcryptjs } });
    const slot: Slot = { worker, job: undefined };
    worker.on("message", (ok: boolean) => {
      const job = slot.job;
      slot.job = undefined;
      job?.resolve(ok);
      this.next(slot);
      if (!slot.job) worker.unref();
    });
    // An uncaught error in the worker is followed by 'exit'; the error itself is handled there.
    worker.on("error", () => {});
    worker.on("exit", (code) => {
      this.slots.splice(this.slots.indexOf(slot), 1);
      slot.job?.reject(new Error(`bcrypt worker exited (code ${code})`));
      slot.job = undefined;
      if (this.closed) return;
      const replacement = this.queue.length > 0 ? this.spawn() : undefined;
      if (replacement) this.next(replacement);
    });
    this.slots.push(slot);
    return slot;
  }

  // A worker keeps the process alive only while it runs a check (its caller awaits it); an idle one
  // never does, so a forgotten close() cannot hang an exit.
  private run(slot: Slot, job: Job): void {
    slot.job = job;
    slot.worker.ref();
    slot.worker.postMessage({ password: job.password, hash: job.hash });
  }

  private next(slot: Slot): void {
    const job = this.queue.shift();
    if (job) this.run(slot, job);
  }
}
