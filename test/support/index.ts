// The test kit's door: unit, integration and e2e tests import the kit from here (never from
// its files), and nothing under broker/, loadgen/ or cli/ but a *.test.ts imports it
// (test/boundaries.test.ts). tsconfig.build.json leaves test/ out, so dist/ and the image carry
// no kit.
//
// The clients, waits, names, status and raw-gRPC helpers reach a broker over the wire only
// (grpc-js, node:http2 and generated code; no broker/ import, checked by the boundary test), so
// the same helpers test the source in-process and the image in a container. test-servers.ts,
// engine-harness.ts and the store helpers build brokers and stores from the source.

export { uniqueName } from "./names.js";
export { pollUntil, Waiters } from "./waits.js";
export { codeOf, expectStatus } from "./status.js";
export { healthCheck } from "./health.js";
export { clientSetup, type ClientSecurity } from "./grpc-client.js";
export { makeTestPki, selfSignedCertificate, type CertFiles, type TestPki } from "./certs.js";
export { v1Api, v1Client, v1Subscribe, type V1Api, type V1Subscription, type V1SubscriptionOptions } from "./v1-client.js";
export {
  consumersAttached,
  TestConsumer,
  TestPublisher,
  topicWithSubscription,
  v2Api,
  v2Client,
  type ConsumeOptions,
  type SubscriptionConfigInput,
  type V2Api,
} from "./v2-client.js";
export { frame, http2Session, prng, rawCall, RawSessions, rawTcp, type RawOutcome } from "./raw-grpc.js";
export { unreadConsumer, unreadSession, type UnreadConsumer } from "./unread-consumer.js";
export { startV1TestServer, startV2TestServer, type V1TestServer, type V2TestServer } from "./test-servers.js";
export { EngineHarness, RecordingSink } from "./engine-harness.js";
export { payloadFor, plainTopicConfig } from "./store-records.js";
export { FailingStore, InjectedAppendError } from "./failing-store.js";
export { mountTmpfs, type Tmpfs } from "./tmpfs.js";
export { REPO_ROOT, spawnTs, startCliBroker, type Child } from "./child-process.js";
export { parseXml, xmlFind, type XmlElement } from "./xml.js";
export { parseOpenMetrics, sampleValue, samplesOf, type MetricFamily, type Sample } from "./openmetrics.js";
export { httpGet, type HttpAnswer } from "./http.js";
export { faultedResult, withSyntheticTimeline, SYNTHETIC_KILL, type FaultedOptions } from "./faulted-result.js";
export { grpcFramed, startH2Server, type H2TestServer, type ServedStream } from "./h2-server.js";
