"use strict";
// Stands in for undici's lib/web/fetch/body.js in the Lambda code: undici's HTTP/1 client requires it
// only to send a FormData request body, which ferry never does, but bundling it brings the fetch body
// mixins, FormData, its multipart parser and WebIDL along (~40 KiB of every function's code).
module.exports = {
  extractBody() {
    throw new Error("ferry's Lambda code is built without FormData request bodies");
  },
};
