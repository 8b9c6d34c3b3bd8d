import { once } from "node:events";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { BudgetedReads, ReadBudget, readsHandedOver } from "./read-budget.js";

/** A budget whose turns come only when the test runs them. */
function manualBudget(bytesPerTurn: number): { budget: ReadBudget; turns: (() => void)[]; runTurn: () => void } {
  const turns: (() => void)[] = [];
  const budget = new ReadBudget(bytesPerTurn, (turn) => turns.push(turn));
  return {
    budget,
    turns,
    runTurn: () => {
      expect(turns.length, "a turn is scheduled").toBe(1);
      turns.shift()!();
    },
  };
}

/** Lets the stream machinery (nextTick, setImmediate) run until `done` holds, at most `max` turns. */
async function settle(done: () => boolean, max = 1000): Promise<void> {
  for (let i = 0; i < max && !done(); i++) await new Promise((r) => setImmediate(r));
}

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

/** A stream's chunks as consume() receives them, and whether its end came. */
function reader(budget: ReadBudget, socket = new PassThrough()) {
  const got: Buffer[] = [];
  const seen = { ended: false, bytes: 0 };
  new BudgetedReads(socket, (c) => (got.push(c), (seen.bytes += c.length)), budget);
  socket.on("end", () => (seen.ended = true));
  return { socket, got, seen };
}

describe("ReadBudget and BudgetedReads", () => {
  it("hands chunks over at once, in order, while the turn has budget, counting each read", () => {
    const { budget, turns } = manualBudget(1000);
    const { socket, got } = reader(budget);
    const a = bytes(400, 1);
    const b = bytes(400, 2);
    const before = readsHandedOver.count;
    socket.emit("data", a);
    socket.emit("data", b);
    expect(got).toEqual([a, b]);
    expect(readsHandedOver.count - before).toBe(2);
    expect(socket.isPaused()).toBe(false);
    expect(turns.length, "one turn armed to make the budget whole again").toBe(1);
  });

  it("pauses the socket whose chunk finds the budget spent, and hands that chunk over next turn before later reads", async () => {
    const { budget, runTurn } = manualBudget(1000);
    const { socket, got } = reader(budget);
    const first = bytes(1200, 1);
    const held = bytes(300, 2);
    socket.write(first);
    socket.write(held);
    await settle(() => budget.waitingCount > 0);
    // The first chunk overspent the turn (a chunk is never cut); the next one waits.
    expect(got).toEqual([first]);
    expect(budget.waitingCount).toBe(1);
    expect(socket.isPaused()).toBe(true);
    const later = bytes(200, 3);
    socket.write(later);
    await settle(() => false, 20);
    expect(got.length, "a paused socket hands nothing over").toBe(1);
    runTurn();
    await settle(() => got.length === 3);
    expect(Buffer.concat(got).equals(Buffer.concat([first, held, later]))).toBe(true);
    expect(socket.isPaused()).toBe(false);
    expect(budget.waitingCount).toBe(0);
  });

  it("keeps a socket's end behind the data it held", async () => {
    const { budget, runTurn } = manualBudget(100);
    const { socket, got, seen } = reader(budget);
    socket.write(bytes(150, 1));
    socket.end(bytes(50, 2));
    await settle(() => budget.waitingCount > 0);
    await settle(() => seen.ended, 20);
    expect(seen.ended, "no end while data waits").toBe(false);
    runTurn();
    await settle(() => seen.ended);
    expect(Buffer.concat(got).equals(Buffer.concat([bytes(150, 1), bytes(50, 2)]))).toBe(true);
  });

  it("resumes waiting sockets oldest first, as many as what they hold fits the turn", async () => {
    const { budget, turns, runTurn } = manualBudget(100);
    const [a, b, c] = [reader(budget), reader(budget), reader(budget)];
    a.socket.write(bytes(150, 0)); // spends the turn
    await settle(() => a.got.length === 1);
    b.socket.write(bytes(150, 0));
    c.socket.write(bytes(150, 0));
    await settle(() => budget.waitingCount === 2);
    a.socket.write(bytes(10, 0));
    await settle(() => budget.waitingCount === 3);
    expect([a.got.length, b.got.length, c.got.length]).toEqual([1, 0, 0]);
    runTurn(); // b holds 150 bytes: the turn's 100 go to it alone
    await settle(() => b.got.length === 1);
    expect([a.got.length, b.got.length, c.got.length]).toEqual([1, 1, 0]);
    expect(budget.waitingCount).toBe(2);
    runTurn();
    await settle(() => c.got.length === 1);
    runTurn();
    await settle(() => a.got.length === 2);
    expect([a.got.length, b.got.length, c.got.length]).toEqual([2, 1, 1]);
    expect(budget.waitingCount).toBe(0);
    expect(turns.length).toBeLessThanOrEqual(1);
  });

  it("lets a socket destroyed while it waited go, and serves the others", async () => {
    const { budget, runTurn } = manualBudget(100);
    const live = reader(budget);
    const gone = reader(budget);
    live.socket.write(bytes(100, 0));
    await settle(() => live.got.length === 1);
    gone.socket.write(bytes(100, 0));
    live.socket.write(bytes(100, 0));
    await settle(() => budget.waitingCount === 2);
    gone.socket.destroy();
    runTurn();
    await settle(() => live.got.length === 2);
    expect(gone.got.length).toBe(0);
    expect(budget.waitingCount).toBe(0);
  });
});

describe("BudgetedReads on a TCP socket", () => {
  let server: Server | undefined;
  let client: Socket | undefined;
  afterEach(async () => {
    client?.destroy();
    if (server) await new Promise((r) => server!.close(r));
    server = client = undefined;
  });

  it("delivers every byte in order, and then the end, while its reads wait for turns", async () => {
    const payload = bytes(4 << 20, 7);
    server = createServer((s) => s.end(payload));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    client = connect((server.address() as AddressInfo).port, "127.0.0.1");
    const { budget, turns } = manualBudget(64 << 10);
    const { got, seen } = reader(budget, client as unknown as PassThrough);
    let heldTurns = 0;
    while (!seen.ended) {
      await settle(() => budget.waitingCount > 0 || seen.ended);
      if (budget.waitingCount > 0) {
        const before = seen.bytes;
        await settle(() => false, 20);
        expect(seen.bytes, "nothing handed over while the socket waits").toBe(before);
        expect(seen.ended, "no end while data waits").toBe(false);
        heldTurns++;
      }
      turns.shift()?.();
    }
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    // A turn hands over at most its 64 KiB and what one socket read more: 4 MiB took many turns.
    expect(heldTurns).toBeGreaterThanOrEqual(16);
  });
});
