"use strict";
// Stands in for hdr-histogram-js's WebAssembly histograms (its dist/wasm/index.js: the module inlined
// as base64, the AssemblyScript loader, pako) in the load tester's Lambda code: ferry builds plain
// JavaScript histograms only (never `useWebAssembly`), ~50 KiB less in the bench functions.
class WasmHistogram {
  constructor() {
    throw new Error("ferry's Lambda code is built without hdr-histogram-js's WebAssembly histograms");
  }
}
const unavailable = () => {
  throw new Error("ferry's Lambda code is built without hdr-histogram-js's WebAssembly histograms");
};
module.exports = {
  webAssemblyAvailable: false,
  webAssemblyReady: () => false,
  initWebAssembly: async () => unavailable(),
  initWebAssemblySync: unavailable,
  WasmHistogram,
};
