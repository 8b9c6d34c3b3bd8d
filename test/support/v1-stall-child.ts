// Test fixture (run as a child process by v1-slow-consumer.test.ts): subscribes and reports on
// stdout as JSON lines. The test stalls it for real with SIGSTOP, so it stops reading its
// socket; a paused grpc-js stream in the test's own process would still be drained by Node's
// HTTP/2 session and never look slow to the server.
import { v1Client, v1Subscribe } from "./v1-client.js";

const [address, topic] = process.argv.slice(2);
if (!address || !topic) throw new Error("usage: v1-stall-child.ts <address> <topic>");
const client = v1Client(address);
const sub = await v1Subscribe(client, topic, { mode: "light" });
process.stdout.write(`${JSON.stringify({ event: "subscribed", ref: sub.ref })}\n`);
const end = await sub.ended;
// Messages carry their publish index in metadata "i": a gap-free prefix starts at 0.
const inOrder = sub.messages.every((m, k) => m.metadata["i"] === String(k));
process.stdout.write(`${JSON.stringify({ event: "ended", code: end.code, details: end.details, count: sub.messages.length, inOrder })}\n`);
client.close();
