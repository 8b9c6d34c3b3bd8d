import { isIP } from "node:net";
import { BrokerConfigError } from "./config.js";
import type { TlsMode } from "./tls.js";

/**
 * True for an address only this machine can reach: "localhost", 127.0.0.0/8, ::1 and the
 * IPv4-mapped ::ffff:127.x.y.z. Anything else (0.0.0.0, ::, a LAN address, a host name) counts
 * as reachable from the network.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (h.toLowerCase() === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) {
    const lower = h.toLowerCase();
    if (lower === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(lower)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && mapped[1]!.startsWith("127.");
  }
  return false;
}

/**
 * Secure default: a listener others can reach must have TLS and tokens, unless `insecure` says
 * the operator means it. Checked before the store opens and before anything binds, so a refused
 * start never listens, not even for a moment.
 */
export function checkExposure(host: string, tls: TlsMode, tokens: boolean, insecure: boolean): void {
  if (insecure || isLoopbackHost(host) || (tls !== "off" && tokens)) return;
  const missing = [tls === "off" ? "TLS (--tls-cert, --tls-key)" : "", tokens ? "" : "tokens (--token-file)"].filter((m) => m !== "").join(" and ");
  throw new BrokerConfigError(
    "--insecure",
    `refusing to listen on non-loopback host ${host} without ${missing}: anyone who reaches it could read, publish and delete every topic; ` +
      "configure them, or pass --insecure to accept that (docs/security.md)",
  );
}
