"use strict";
// Stands in for node:assert inside undici in ferry's bundles. undici calls assert(value) to check its own
// invariants, nothing else of the module; node:assert brings its diff printer, colour support and call
// tracker at every start, on the way to the first request. A failed check is still an error, with the
// code and name node:assert gives it.
module.exports = function assert(value, message) {
  if (value) return;
  if (message instanceof Error) throw message;
  const err = new Error(message ?? "The expression evaluated to a falsy value");
  err.name = "AssertionError";
  err.code = "ERR_ASSERTION";
  throw err;
};
module.exports.ok = module.exports;
