"use strict";
// Stands in for node:http inside undici in ferry's bundles. undici takes two things from it: IncomingMessage
// (to recognise a node:http response handed to it as a request body, which ferry never does) and
// maxHeaderSize (the default limit on response headers). Loading node:http costs its client, server and
// agent modules at every start, on the way to the first request; this keeps them out.
// maxHeaderSize is node:http's own value whenever it can differ from Node's default (16 KiB): when
// --max-http-header-size is among Node's options, node:http is loaded for it.
const custom = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((a) =>
  a.startsWith("--max-http-header-size"),
);
class IncomingMessage {}
module.exports = custom ? require("node:http") : { IncomingMessage, maxHeaderSize: 16 * 1024 };
