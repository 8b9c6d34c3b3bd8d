/**
 * What a NATS server sends a core client, parsed from socket chunks with no copy and no object
 * per message (docs/loadgen.md, "The NATS core client"). A `MSG <subject> <sid> [reply] <size>`
 * line and the payload after it become one call `onMsg(sid, buf, start, end)` on the chunk that
 * holds them; only a line or a payload cut by a chunk's end is copied, into a buffer that is
 * reused. Every other line (INFO, PING, PONG, +OK, -ERR) goes to `onControl` as a string: there
 * are a few of them per connection and flush, not per message.
 *
 * The client never asks for headers (CONNECT `headers: false`), so HMSG is a protocol error here,
 * like a payload without its CRLF or a MSG line whose sid or size is not a number: `push` throws,
 * and the connection ends with that error.
 */

const CR = 13;
const LF = 10;
const SPACE = 32;
const TAB = 9;
const ZERO = 48;

/** The longest control line held across chunks (an INFO with a long server list fits). */
export const MAX_CONTROL_LINE = 1 << 20;

/** The largest MSG payload accepted: nats-server's own ceiling for max_payload (64 MB). */
export const MAX_MSG_PAYLOAD = 64 * 1024 * 1024;

export class NatsProtocolError extends Error {}

export class NatsParser {
  /** A line cut by a chunk's end, without its LF. */
  private line = Buffer.allocUnsafe(256);
  private lineLen = 0;
  /** A payload cut by a chunk's end, with its CRLF: `payNeed` bytes in all, `payLen` held. */
  private pay = Buffer.allocUnsafe(4096);
  private payLen = 0;
  private payNeed = -1;
  private paySid = 0;
  /** What the MSG line just parsed said. */
  private sid = 0;
  private size = 0;

  constructor(
    private readonly onMsg: (sid: number, buf: Uint8Array, start: number, end: number) => void,
    private readonly onControl: (line: string) => void,
  ) {}

  /** Parse one chunk (it is not kept: what it ends with mid-line or mid-payload is copied). */
  push(b: Uint8Array): void {
    const n = b.length;
    let i = 0;
    if (this.payNeed >= 0) {
      i = this.continuePayload(b);
      if (this.payNeed >= 0) return;
    }
    if (this.lineLen > 0) {
      let lf = i;
      while (lf < n && b[lf] !== LF) lf++;
      if (lf === n) {
        this.holdLine(b, i, n);
        return;
      }
      this.holdLine(b, i, lf);
      let end = this.lineLen;
      if (end > 0 && this.line[end - 1] === CR) end--;
      this.lineLen = 0;
      i = this.lineDone(this.line, 0, end, b, lf + 1);
      if (i < 0) return;
    }
    while (i < n) {
      const next = this.inChunkMsg(b, i, n);
      if (next >= 0) {
        i = next;
        continue;
      }
      let lf = i;
      while (lf < n && b[lf] !== LF) lf++;
      if (lf === n) {
        this.holdLine(b, i, n);
        return;
      }
      i = this.lineDone(b, i, lf > i && b[lf - 1] === CR ? lf - 1 : lf, b, lf + 1);
      if (i < 0) return;
    }
  }

  /**
   * The common case in one pass: `MSG <subject> <sid> <size>\r\n<payload>\r\n` whole in this
   * chunk, single spaces, no reply subject. The position after it, or -1 for anything else (a
   * line or payload cut by the chunk's end, another op, a reply subject, a malformed line), which
   * the general path then parses, or rejects.
   */
  private inChunkMsg(b: Uint8Array, i: number, n: number): number {
    if (i + 4 >= n || b[i] !== 0x4d || b[i + 1] !== 0x53 || b[i + 2] !== 0x47 || b[i + 3] !== SPACE) return -1;
    let p = i + 4;
    while (p < n && b[p]! > SPACE) p++;
    if (p === i + 4 || p >= n || b[p] !== SPACE) return -1;
    let sid = 0;
    let d: number;
    const sid0 = ++p;
    while (p < n && (d = b[p]! - ZERO) >= 0 && d <= 9) {
      sid = sid * 10 + d;
      p++;
    }
    if (p === sid0 || p >= n || b[p] !== SPACE) return -1;
    let size = 0;
    const size0 = ++p;
    while (p < n && (d = b[p]! - ZERO) >= 0 && d <= 9) {
      size = size * 10 + d;
      p++;
    }
    if (p === size0 || p + 1 >= n || b[p] !== CR || b[p + 1] !== LF) return -1;
    const start = p + 2;
    const end = start + size;
    if (end + 2 > n || b[end] !== CR || b[end + 1] !== LF) return -1;
    this.onMsg(sid, b, start, end);
    return end + 2;
  }

  /** The line `buf[start, end)` ended; what follows it starts at `b[next]`. The next position, or -1 when `b` ended inside a payload. */
  private lineDone(buf: Uint8Array, start: number, end: number, b: Uint8Array, next: number): number {
    if (end - start > 4 && (buf[start]! | 0x20) === 0x6d && (buf[start + 1]! | 0x20) === 0x73 && (buf[start + 2]! | 0x20) === 0x67 && (buf[start + 3] === SPACE || buf[start + 3] === TAB)) {
      this.msgArgs(buf, start + 4, end);
      return this.payload(b, next, this.size);
    }
    if (end - start > 4 && (buf[start]! | 0x20) === 0x68 && (buf[start + 1]! | 0x20) === 0x6d) throw new NatsProtocolError("NATS protocol error: an HMSG (a message with headers), which this client did not ask for (CONNECT headers: false)");
    if (end > start) this.onControl(Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("utf8"));
    return next;
  }

  /** `MSG` arguments: subject, sid, optional reply subject, size. Sets `sid` and `size`. */
  private msgArgs(buf: Uint8Array, start: number, end: number): void {
    let p = start;
    while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    while (p < end && buf[p] !== SPACE && buf[p] !== TAB) p++; // the subject: the sid says whose it is
    while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    let sid = 0;
    let digits = 0;
    for (; p < end && buf[p] !== SPACE && buf[p] !== TAB; p++, digits++) {
      const d = buf[p]! - ZERO;
      if (d < 0 || d > 9) throw this.badLine(buf, start, end, "sid");
      sid = sid * 10 + d;
    }
    if (digits === 0) throw this.badLine(buf, start, end, "sid");
    // The size is the last argument (a reply subject may stand between).
    let q = end;
    while (q > p && (buf[q - 1] === SPACE || buf[q - 1] === TAB)) q--;
    let size = 0;
    let mult = 1;
    digits = 0;
    for (; q > p && buf[q - 1] !== SPACE && buf[q - 1] !== TAB; q--, digits++) {
      const d = buf[q - 1]! - ZERO;
      if (d < 0 || d > 9) throw this.badLine(buf, start, end, "size");
      size += d * mult;
      mult *= 10;
    }
    if (digits === 0) throw this.badLine(buf, start, end, "size");
    this.sid = sid;
    this.size = size;
  }

  private badLine(buf: Uint8Array, start: number, end: number, what: string): NatsProtocolError {
    const text = Buffer.from(buf.buffer, buf.byteOffset + start, Math.min(end - start, 200)).toString("latin1");
    return new NatsProtocolError(`NATS protocol error: MSG line without a numeric ${what}: ${JSON.stringify(`MSG ${text}`)}`);
  }

  /** A payload of `size` bytes and its CRLF from `b[i]`: delivered in place, or held. */
  private payload(b: Uint8Array, i: number, size: number): number {
    const end = i + size;
    if (end + 2 <= b.length) {
      if (b[end] !== CR || b[end + 1] !== LF) throw new NatsProtocolError(`NATS protocol error: a ${size}-byte MSG payload not followed by CRLF`);
      this.onMsg(this.sid, b, i, end);
      return end + 2;
    }
    if (size > MAX_MSG_PAYLOAD) throw new NatsProtocolError(`NATS protocol error: a MSG of ${size} bytes, above the ${MAX_MSG_PAYLOAD}-byte limit of any nats-server`);
    const need = size + 2;
    if (this.pay.length < need) this.pay = Buffer.allocUnsafe(Math.max(need, this.pay.length * 2));
    this.pay.set(b.subarray(i), 0);
    this.payLen = b.length - i;
    this.payNeed = need;
    this.paySid = this.sid;
    return -1;
  }

  /** Bytes from `b`'s start complete the held payload (or not yet). The position after them. */
  private continuePayload(b: Uint8Array): number {
    const k = Math.min(this.payNeed - this.payLen, b.length);
    this.pay.set(k === b.length ? b : b.subarray(0, k), this.payLen);
    this.payLen += k;
    if (this.payLen < this.payNeed) return k;
    const size = this.payNeed - 2;
    this.payNeed = -1;
    this.payLen = 0;
    if (this.pay[size] !== CR || this.pay[size + 1] !== LF) throw new NatsProtocolError(`NATS protocol error: a ${size}-byte MSG payload not followed by CRLF`);
    this.onMsg(this.paySid, this.pay, 0, size);
    return k;
  }

  private holdLine(b: Uint8Array, start: number, end: number): void {
    const len = this.lineLen + (end - start);
    if (len > MAX_CONTROL_LINE) throw new NatsProtocolError(`NATS protocol error: a line longer than ${MAX_CONTROL_LINE} bytes`);
    if (this.line.length < len) {
      const grown = Buffer.allocUnsafe(Math.max(len, this.line.length * 2));
      this.line.copy(grown, 0, 0, this.lineLen);
      this.line = grown;
    }
    this.line.set(b.subarray(start, end), this.lineLen);
    this.lineLen = len;
  }
}
