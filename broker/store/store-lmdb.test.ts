import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "lmdb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "./store-errors.js";
import { type StoredMessage } from "./records.js";
import { plainTopicConfig, spawnTs, startCliBroker, type Child } from "../../test/support/index.js";
import { LOCK_FILE } from "./data-dir.js";
import { openStore, StoreOpenError } from "./open-store.js";
import { LmdbStore } from "./store-lmdb.js";

let dir: string;
const children: Child[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ratatoskr-lmdb-"));
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill("SIGKILL");
    await c.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

async function openError(dataDir: string): Promise<StoreOpenError> {
  const err: unknown = await openStore({ dataDir, fsync: false }).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreOpenError);
  return err as StoreOpenError;
}

function producerMessage(sequence: number, id: string, publishTimeMs: number): StoredMessage {
  return { id, topic: "t", sequence, payload: Buffer.from("x"), attributes: {}, publishTimeMs, producerId: true };
}

describe("LmdbStore: data directories it must refuse", () => {
  it("refuses a data file that is not LMDB, without crashing", async () => {
    const data = join(dir, "data");
    mkdirSync(data);
    writeFileSync(join(data, "data.mdb"), Buffer.alloc(64 * 1024, 0x5a));
    const err = await openError(data);
    expect(err.problem).toBe("corrupt");
    expect(err.message).toMatch(/data\.mdb is not an LMDB data file/);
  });

  // LMDB on /proc spins at 100% CPU forever; these must be refused before anything is opened.
  it.each([["/proc/x"], ["/proc/self/fd"], ["/sys/x/y"], ["/sys"], ["/tmp/../proc/x"]])("refuses %s, on a kernel pseudo-filesystem", async (path) => {
    const err = await openError(path);
    expect(err.problem).toBe("pseudo-filesystem");
    expect(err.message).toMatch(/ is under \/(proc|sys), a kernel pseudo-filesystem; use a directory on a real disk$/);
  });

  it("refuses a path that reaches /proc through a symlink, and creates nothing there", async () => {
    symlinkSync("/proc/self", join(dir, "link"));
    const err = await openError(join(dir, "link", "not-there", "data"));
    expect(err.problem).toBe("pseudo-filesystem");
    expect(err.message).toContain("/proc/");
  });

  it("still opens a directory whose name merely starts with proc", async () => {
    const data = join(dir, "proc", "sys");
    await (await openStore({ dataDir: data, fsync: false })).close();
  });

  it("refuses a path that is a file", async () => {
    const file = join(dir, "plain-file");
    writeFileSync(file, "hello");
    expect((await openError(file)).problem).toBe("corrupt");
  });

  it("refuses a store written with another format version", async () => {
    const data = join(dir, "data");
    await (await LmdbStore.open({ dataDir: data, fsync: false })).close();
    const raw = open({ path: data, maxDbs: 12 });
    raw.openDB("meta", { encoding: "json" }).putSync("format", { version: 99 });
    await raw.close();
    const err = await openError(data);
    expect(err.problem).toBe("version");
    expect(err.message).toMatch(/format version 99; this broker reads version 1/);
  });

  it("refuses a directory this process already has open, and opens it again once closed", async () => {
    const data = join(dir, "data");
    const first = await LmdbStore.open({ dataDir: data, fsync: false });
    const err = await openError(data);
    expect(err.problem).toBe("locked");
    await first.close();
    await (await LmdbStore.open({ dataDir: data, fsync: false })).close();
  });

  it("refuses a directory held by another running broker; that broker's CLI twin exits with one line", async () => {
    const data = join(dir, "data");
    const { child } = await startCliBroker(["--data-dir", data]);
    children.push(child);
    const err = await openError(data);
    expect(err.problem).toBe("locked");
    expect(err.message).toContain(`pid ${child.proc.pid}`);

    const second = spawnSync(process.execPath, ["--import", "tsx", "cli/main.ts", "broker", "--port", "0", "--data-dir", data], {
      cwd: join(import.meta.dirname, "..", ".."),
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(second.status).toBe(1);
    const lines = second.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/cannot open data directory .*in use by another process \(pid \d+/);
  });

  it("takes over a lock file left by a process that is gone (kill -9)", async () => {
    const data = join(dir, "data");
    await (await LmdbStore.open({ dataDir: data, fsync: false })).close();
    const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    writeFileSync(join(data, LOCK_FILE), JSON.stringify({ pid: Number(gone.stdout), start: 1 }));
    const store = await LmdbStore.open({ dataDir: data, fsync: false });
    await store.close();
  });

  it("refuses a directory it may not write (as another user when running as root)", async () => {
    const data = join(dir, "data");
    await (await LmdbStore.open({ dataDir: data, fsync: false })).close();
    if (process.getuid?.() === 0) {
      // root ignores permission bits: try as `nobody` in a child, through the CLI.
      chmodSync(dir, 0o755);
      chmodSync(data, 0o700);
      const child = spawnTs("cli/main.ts", ["broker", "--port", "0", "--data-dir", data], { uid: 65534, gid: 65534 });
      children.push(child);
      expect(await child.exited).toBe(1);
      expect(child.stderr).toHaveLength(1);
      expect(child.stderr[0]).toMatch(/cannot open data directory .*permission denied/);
    } else {
      chmodSync(data, 0o500);
      expect((await openError(data)).problem).toBe("permission");
      chmodSync(data, 0o700);
    }
  });
});

describe("LmdbStore: lifecycle", () => {
  it("refuses writes once closing has begun, and releases the directory when closed", async () => {
    const data = join(dir, "data");
    const store = await LmdbStore.open({ dataDir: data, fsync: false });
    await store.putTopic({ name: "t", config: plainTopicConfig(), createdAtMs: 0 });
    const closed = store.close();
    await expect(store.append("t", [producerMessage(1, "late", 1)])).rejects.toBeInstanceOf(StoreUnavailableError);
    await closed;
    const again = await LmdbStore.open({ dataDir: data, fsync: false });
    expect(again.bounds("t")).toEqual({ first: 1, last: 0, bytes: 0 });
    await again.close();
  });
});

describe("LmdbStore: directory names", () => {
  it("opens a data directory whose name has a dot in it, and finds its data there again", async () => {
    const data = join(dir, "ratatoskr.d", "store.v1");
    const first = await LmdbStore.open({ dataDir: data, fsync: false });
    await first.putTopic({ name: "t", config: plainTopicConfig(), createdAtMs: 0 });
    await first.append("t", [producerMessage(1, "m1", 1)]);
    await first.close();
    const again = await LmdbStore.open({ dataDir: data, fsync: true });
    expect(again.bounds("t").last).toBe(1);
    await again.close();
  });
});

describe("LmdbStore: flush settings", () => {
  it("opens a directory written with the other flush setting", async () => {
    const data = join(dir, "data");
    let next = 1;
    for (const fsync of [true, false, true]) {
      const store = await LmdbStore.open({ dataDir: data, fsync });
      if (next === 1) await store.putTopic({ name: "t", config: plainTopicConfig(), createdAtMs: 0 });
      expect(store.bounds("t").last).toBe(next - 1);
      await store.append("t", [producerMessage(next, `m${next}`, next)]);
      next++;
      await store.close();
    }
  });
});

describe("LmdbStore: producer ids for de-duplication", () => {
  it("keeps ids of messages retention dropped, within the window, across a restart", async () => {
    const data = join(dir, "data");
    let store = await LmdbStore.open({ dataDir: data, fsync: false });
    await store.putTopic({ name: "t", config: { ...plainTopicConfig(), dedupWindowMs: 1_000 }, createdAtMs: 0 });
    await store.append("t", [producerMessage(1, "a", 10_000), producerMessage(2, "b", 10_800), producerMessage(3, "c", 11_500)]);
    store.truncateBefore("t", 3); // drops a (outside the window of 11_500) and b (inside)
    await store.close();
    store = await LmdbStore.open({ dataDir: data, fsync: false });
    expect(store.recover().dedup.map((d) => d.id)).toEqual(["b", "c"]);
    // Later messages move the window on; truncation prunes ids that fell out of it.
    await store.append("t", [producerMessage(4, "d", 20_000)]);
    store.truncateBefore("t", 4);
    await store.close();
    store = await LmdbStore.open({ dataDir: data, fsync: false });
    expect(store.recover().dedup.map((d) => d.id)).toEqual(["d"]);
    await store.close();
  });
});
