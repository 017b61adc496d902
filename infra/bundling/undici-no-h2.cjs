"use strict";
// Stands in for undici's lib/dispatcher/client-h2.js in ferry's bundles: undici speaks HTTP/2 only when
// asked (`allowH2`, then ALPN), which ferry never does, but the real module loads node:http2 (and with it
// node:tls) at start-up. This stub keeps that out of every start.
module.exports = function connectH2() {
  throw new Error("ferry's undici is built without HTTP/2 (allowH2 is not used)");
};
