/**
 * bare/: the bare clients that calibrate the harness (one per driver, through the driver's own
 * protocol code, in a publisher and a subscriber process). Other folders enter here.
 */
export { runBareClient, WARMUP_SHARE, SUBSCRIBER_PROCESSES, type BareOptions, type BareResult } from "./bare-client.js";
