#!/usr/bin/env -S MALLOC_TRIM_THRESHOLD_=67108864 node --max-semi-space-size=1 --initial-old-space-size=64 --liftoff-only
// (glibc's malloc hands freed memory at the top of its heap back to the kernel once 128 KiB are free; a
// stream of 64 KiB socket buffers then faults its pages in again and again: 50,000-370,000 page faults
// and up to half the CPU of a 3 GB download. Keeping up to 64 MiB cuts that to ~25,000 faults and 15-40 %
// of the CPU per byte (the peak RSS grows by 10-17 MiB). infra sets the same for the Lambdas.)
// (A 1 MiB young generation keeps the peak RSS of long streaming copies flat, ~95 MiB instead of
// ~120 MiB for 1 GiB: blob bytes live outside the V8 heap, only short-lived wrappers live in it.
// A 64 MiB initial old-generation limit: with the lean CLI bundle the heap starts small, and V8 then
// ran a full mark-compact every few MB of promoted wrappers (~60 in 3 s of blob reads, a third of the
// download rate lost); it is a limit, not memory taken: the peak RSS of a 1 GiB copy stayed ~100 MiB.)
// (--liftoff-only: undici parses HTTP with llhttp compiled to WebAssembly, and V8 recompiled its hot
// functions with TurboFan on background threads during every run: ~45 ms of CPU, 10-15 % of a 100 MiB
// copy. The parser does little per 64 KiB of body, so the baseline code costs nothing measurable later:
// the steady state of a long copy is the same.)
// ferry's executable. It runs the bundle dist/ferry.mjs: built by `npm ci` and `npm run build` in a
// checkout, shipped in the package (`npm pack`). Without it, in a checkout, it runs the TypeScript
// sources through Node's type stripping (Node ≥ 22.18; `npm ci` brings that Node into node_modules/.bin
// for npx and npm scripts). Node strips no types under node_modules: an installed ferry runs the bundle.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `ferry: needs Node.js 22.18 or newer (this is ${process.version}). ` +
      "Install a newer Node.js, or in ferry's checkout run `npx ferry`, which uses the Node.js 22 that `npm ci` installed.\n",
  );
  process.exitCode = 2;
} else if (process.argv.length === 3 && (process.argv[2] === "--version" || process.argv[2] === "-V")) {
  // The version alone, before any of the CLI loads: scripts ask for it, and it should cost what Node does.
  // (Built-ins through process.getBuiltinModule, here and below: an `import` of node:fs builds its ES
  // module facade, which reads every export, and the lazy ones load Node's file streams and fs/promises
  // with readline: ~10 internal modules that a copy does not need before its first request.)
  const { readFileSync } = process.getBuiltinModule("node:fs");
  process.stdout.write(
    `${JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version}\n`,
  );
} else {
  // Cache compiled code between runs (Node ≥ 22.1): start-up matters when ferry runs once per image.
  process.getBuiltinModule("node:module").enableCompileCache();
  // The bundle built by `npm ci` / `npm run build` starts fastest; without it, run the sources.
  const { existsSync } = process.getBuiltinModule("node:fs");
  const bundle = new URL("../dist/ferry.mjs", import.meta.url);
  const useBundle = existsSync(bundle) && !process.env.FERRY_FROM_SOURCE;
  const { main } = await import(useBundle ? bundle.href : "./main.ts");
  process.exitCode = await main(process.argv.slice(2));
}
