// v2 (`ratatoskr.v2.Broker`): the room's door.
export { addV2Service, maxFrameBytes, V2_SERVICE_DEFINITION, type V2Service } from "./v2-service.js";
