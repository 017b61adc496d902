// Stands in for what @smithy/core's HttpProtocol imports dynamically, on first use, for operations with
// an event stream (S3 SelectObjectContent and the like), none of which ferry calls. The dynamic import
// made esbuild keep every module of @smithy/core/event-streams, unshaken, in each Lambda function
// (~15 KiB); the client's static imports of that submodule still get the real one, tree-shaken.
const unsupported = () => {
  throw new Error("ferry's Lambda code is built without AWS event streams");
};
export class EventStreamSerde {
  constructor() {
    unsupported();
  }
}
export const eventStreamSerdeProvider = unsupported;
