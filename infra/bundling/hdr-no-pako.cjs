"use strict";
// Stands in for pako, hdr-histogram-js's zlib for browsers, in the load tester's Lambda code: on Node the
// library deflates and inflates with node:zlib (its findDeflateFunction/findInflateFunction) and turns to
// pako only where that fails (~45 KiB).
const unavailable = () => {
  throw new Error("ferry's Lambda code is built without pako: node:zlib was not found");
};
module.exports = { deflate: unavailable, inflate: unavailable };
