#!/usr/bin/env bash
# Provides the system packages the unit tier (`npm test`) needs, so that a fresh Debian machine
# passes with nothing installed by hand:
#   nats-server  loadgen/drivers/nats-server.test.ts, the nats and jetstream cases of
#                loadgen/drivers/driver-contract.test.ts
#   chromium     the browser case of loadgen/report/html.test.ts (/usr/bin/chromium)
#   openssl      the live TLS case of loadgen/drivers/probe.test.ts (a throwaway certificate)
#   rabbitmq-server  loadgen/drivers/rabbitmq.test.ts (the rabbitmq driver and its embedded server).
#                Installed with services kept from starting: its postinst would start a node
#                listening on 0.0.0.0 (AMQP 5672, epmd 4369). A /usr/sbin/policy-rc.d answering
#                101 (action forbidden) is written for the install only if none exists, and removed
#                after; RUNLEVEL=1 covers invoke-rc.d without one. The tests start their own node
#                on loopback (loadgen/drivers/rabbitmq-server.ts).
#   redis-server loadgen/drivers/peer-servers.test.ts, peer-reconnect.test.ts, the redis-streams
#                cases of driver-contract.test.ts and loadgen/bare/bare-client.test.ts
#   mosquitto    the same files' mqtt cases
# Their Debian packages start a system service on install (redis on 6379, mosquitto on 1883);
# the tests start their own servers, so the install runs under a policy-rc.d that forbids
# starting services (exit 101), unless the machine already has one.
# A missing one is installed with apt-get when running as root where apt-get exists. Otherwise
# (or if apt-get fails) it prints one line naming what is missing and which tests will fail, and
# exits 0: those tests then fail with the reason, they are never skipped.
# RATATOSKR_TEST_DEPS=check reports what is missing without installing anything.
set -uo pipefail

# Executable on PATH or in the sbin folders, as findNatsServer() looks (bash's `command -v` also
# reports a file that is not executable).
on_path() {
  local d IFS=:
  for d in $PATH /usr/sbin /usr/local/sbin; do [ -f "$d/$1" ] && [ -x "$d/$1" ] && return 0; done
  return 1
}

missing=()
on_path nats-server || missing+=(nats-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
on_path openssl || missing+=(openssl)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
on_path redis-server || missing+=(redis-server)
on_path mosquitto || missing+=(mosquitto)
[ ${#missing[@]} -eq 0 ] && exit 0

will_fail() {
  local p out=""
  for p in "${missing[@]}"; do
    case $p in
      nats-server) out+="${out:+; }loadgen/drivers/nats-server.test.ts; loadgen/drivers/driver-contract.test.ts (nats, jetstream)" ;;
      chromium) out+="${out:+; }loadgen/report/html.test.ts (headless chromium)" ;;
      openssl) out+="${out:+; }loadgen/drivers/probe.test.ts (live TLS server)" ;;
      rabbitmq-server) out+="${out:+; }loadgen/drivers/rabbitmq.test.ts" ;;
      redis-server) out+="${out:+; }loadgen/drivers/peer-servers.test.ts, peer-reconnect.test.ts, driver-contract.test.ts, loadgen/bare/bare-client.test.ts (redis-streams)" ;;
      mosquitto) out+="${out:+; }loadgen/drivers/peer-servers.test.ts, peer-reconnect.test.ts, driver-contract.test.ts, loadgen/bare/bare-client.test.ts (mqtt)" ;;
    esac
  done
  echo "$out"
}

if [ "${RATATOSKR_TEST_DEPS:-install}" = check ] || [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: missing ${missing[*]} (apt-get install -y ${missing[*]} as root); these tests will fail: $(will_fail)" >&2
  exit 0
fi

echo "test-deps: installing ${missing[*]} with apt-get (for the tests that need them)"
log=$(mktemp)
t0=$(date +%s)
# No service may start on install (rabbitmq-server's would listen on 0.0.0.0).
policy_written=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# written by ratatoskr scripts/test-deps.sh for one apt-get install\nexit 101\n' >/usr/sbin/policy-rc.d &&
    chmod 755 /usr/sbin/policy-rc.d && policy_written=1
fi
if apt-get update -qq >"$log" 2>&1 &&
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
  echo "test-deps: installed ${missing[*]} in $(($(date +%s) - t0)) s"
  rm -f "$log"
else
  tail -n 5 "$log" >&2
  echo "test-deps: could not install ${missing[*]} (apt-get output above, full log $log); these tests will fail: $(will_fail)" >&2
fi
[ -n "$policy_written" ] && rm -f /usr/sbin/policy-rc.d
exit 0
