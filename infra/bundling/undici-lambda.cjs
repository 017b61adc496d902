"use strict";
// undici's entry point for the Lambda bundles: the dispatchers (Agent, Pool, Client) and the request API
// of undici's own index.js, without what ferry does not use (fetch, WebSocket, EventSource, Cache API,
// cookies, mocks, interceptors, the SQLite cache store). undici is CommonJS, so esbuild cannot tree-shake
// its index.js, which requires all of it: this entry cuts ~210 KiB (minified) from every handler bundle
// and tens of milliseconds from its cold start (npm run bench:cold -- --compare-undici).
//
// Every bundle ferry ships — each Lambda function's code, the CLI — aliases `undici` to this file
// (infra/bundling/options.ts); the tests and `npm run ferry` use undici itself. Paths are relative because the alias also
// captures `undici/...` specifiers. The objects and makeDispatcher are undici 7.30's index.js (of its APIs, request only);
// test/infra/bundles.test.ts checks that every name ferry imports from undici is exported here, that this
// file still resolves, and that requests work through it.
const Client = require("../../node_modules/undici/lib/dispatcher/client");
const Dispatcher = require("../../node_modules/undici/lib/dispatcher/dispatcher");
const Pool = require("../../node_modules/undici/lib/dispatcher/pool");
const Agent = require("../../node_modules/undici/lib/dispatcher/agent");
const errors = require("../../node_modules/undici/lib/core/errors");
const util = require("../../node_modules/undici/lib/core/util");
// Only the request API (ferry uses no other): stream, pipeline, connect and upgrade cost start-up for nothing.
const request = require("../../node_modules/undici/lib/api/api-request");
const buildConnector = require("../../node_modules/undici/lib/core/connect");
const { getGlobalDispatcher, setGlobalDispatcher } = require("../../node_modules/undici/lib/global");

const { InvalidArgumentError } = errors;

Dispatcher.prototype.request = request;

function makeDispatcher(fn) {
  return (url, opts, handler) => {
    if (typeof opts === "function") {
      handler = opts;
      opts = null;
    }
    if (!url || (typeof url !== "string" && typeof url !== "object" && !(url instanceof URL))) {
      throw new InvalidArgumentError("invalid url");
    }
    if (opts != null && typeof opts !== "object") {
      throw new InvalidArgumentError("invalid opts");
    }
    if (opts && opts.path != null) {
      if (typeof opts.path !== "string") {
        throw new InvalidArgumentError("invalid opts.path");
      }
      let path = opts.path;
      if (!opts.path.startsWith("/")) {
        path = `/${path}`;
      }
      url = new URL(util.parseOrigin(url).origin + path);
    } else {
      if (!opts) {
        opts = typeof url === "object" ? url : {};
      }
      url = util.parseURL(url);
    }
    const { agent, dispatcher = getGlobalDispatcher() } = opts;
    if (agent) {
      throw new InvalidArgumentError("unsupported opts.agent. Did you mean opts.client?");
    }
    return fn.call(
      dispatcher,
      {
        ...opts,
        origin: url.origin,
        path: url.search ? `${url.pathname}${url.search}` : url.pathname,
        method: opts.method || (opts.body ? "PUT" : "GET"),
      },
      handler,
    );
  };
}

module.exports = {
  Dispatcher,
  Client,
  Pool,
  Agent,
  buildConnector,
  errors,
  util: { parseHeaders: util.parseHeaders, headerNameToString: util.headerNameToString },
  setGlobalDispatcher,
  getGlobalDispatcher,
  request: makeDispatcher(request),
};
