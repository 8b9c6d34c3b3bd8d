// v1 (`ratatoskr.MessageBroker`, wire-compatible with the original Ratatoskr): the room's door.
export { addV1Service, type V1Service } from "./v1-service.js";
export type { V1SubscribeOptions } from "./v1-subscribe.js";
export { SUBSCRIPTION_REF_HEADER } from "./v1-wire.js";
