// deploy/k8s/ against the Kubernetes schemas (kubernetes-models: the API's OpenAPI schemas as
// validators) and against this repository: the flags, variables, files and names the
// manifests use must exist here, and deploy/k8s/run.sh must drive them as documented
// (docs/deploy.md, "Kubernetes"). There is no cluster on these machines: run.sh is exercised
// with a stand-in `kubectl` that records what it is asked and answers like a cluster would.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import yargs, { type CommandModule } from "yargs";
import { Service, type IService } from "kubernetes-models/v1/Service";
import { PersistentVolumeClaim, type IPersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import { StatefulSet, type IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { Job, type IJob } from "kubernetes-models/batch/v1/Job";
import { NetworkPolicy, type INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { BROKER_SETTINGS } from "../../cli/broker-command.js";
import { benchCommand } from "../../cli/bench-command.js";
import { reportMergeCommand } from "../../cli/report-command.js";

const run = promisify(execFile);
const dir = join(import.meta.dirname, "..", "..", "deploy", "k8s");

/** A parsed YAML document: typed once it is known to be of a kind (the schemas check the rest). */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}
type Model = { validate(): void };

const MODELS: Record<string, new (data: never) => Model> = {
  "v1/Service": Service,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/StatefulSet": StatefulSet,
  "batch/v1/Job": Job,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};
function model(m: { apiVersion: string; kind: string }): Model {
  const Kind = MODELS[`${m.apiVersion}/${m.kind}`];
  if (Kind === undefined) throw new Error(`no schema wired for ${m.apiVersion} ${m.kind}: add it to this test`);
  return new Kind(m as never);
}

function manifests(text: string, file: string): Manifest[] {
  return parseAllDocuments(text).map((d, i) => {
    if (d.errors.length > 0) throw new Error(`${file} document ${i}: ${d.errors[0]!.message}`);
    return d.toJS() as Manifest;
  });
}
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
const all = files.flatMap((f) => manifests(readFileSync(join(dir, f), "utf8"), f).map((m) => ({ file: f, m })));
function find(kind: string, name: string): Manifest {
  const hit = all.find((x) => x.m.kind === kind && x.m.metadata.name === name);
  if (hit === undefined) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return hit.m;
}
const statefulSet = (name: string) => structuredClone(find("StatefulSet", name)) as IStatefulSet;
const job = (name: string) => structuredClone(find("Job", name)) as IJob;
const service = (name: string) => structuredClone(find("Service", name)) as IService;
const policy = (name: string) => structuredClone(find("NetworkPolicy", name)) as INetworkPolicy;
const podSpec = (m: IStatefulSet | IJob): IPodSpec => m.spec!.template.spec!;
const container = (m: IStatefulSet | IJob): IContainer => podSpec(m).containers[0]!;
const mountPaths = (c: IContainer): string[] => (c.volumeMounts ?? []).map((v) => v.mountPath);
const argsOf = (c: IContainer): string[] => c.args ?? [];

/** Parses argv with a real command's yargs definition (strict: an unknown flag throws). */
async function parses(command: CommandModule, argv: string[]): Promise<void> {
  await yargs()
    .command({ ...command, handler: () => undefined } as CommandModule)
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync(argv);
}

/** `$(VAR)` references expanded with stand-in values, as the kubelet would with the pod's env. */
const expand = (args: string[], env: IEnvVar[]) => {
  const declared = new Set(env.map((e) => e.name));
  return args.map((a) =>
    a.replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => {
      if (!declared.has(v)) throw new Error(`${a} uses $(${v}), which the container does not declare`);
      return v === "JOB_COMPLETION_INDEX" ? "0" : v === "START_AT" ? String(Date.now() + 60_000) : `x-${v.toLowerCase()}`;
    }),
  );
};

describe("deploy/k8s manifests", () => {
  it("validate against the Kubernetes schemas", () => {
    expect(all.map((x) => `${x.file}: ${x.m.kind} ${x.m.metadata.name}`)).toEqual([
      "bench-job.yaml: PersistentVolumeClaim ratatoskr-reports",
      "bench-job.yaml: Job ratatoskr-bench",
      "broker.yaml: Service ratatoskr",
      "broker.yaml: Service ratatoskr-headless",
      "broker.yaml: StatefulSet ratatoskr",
      "broker.yaml: NetworkPolicy ratatoskr-broker",
      "merge-job.yaml: Job ratatoskr-merge",
    ]);
    for (const { file, m } of all) expect(() => model(m).validate(), `${file}: ${m.kind} ${m.metadata.name}`).not.toThrow();
  });

  it("the validation catches a broken manifest (it is not vacuous)", () => {
    const badPort = statefulSet("ratatoskr");
    (container(badPort).ports![0] as { containerPort: unknown }).containerPort = "fifty";
    expect(() => model(badPort).validate()).toThrow(/containerPort must be integer/);
    const noTemplate = job("ratatoskr-bench") as Partial<IJob> & Manifest;
    delete (noTemplate.spec as Partial<NonNullable<IJob["spec"]>>).template;
    expect(() => model(noTemplate).validate()).toThrow(/template/);
  });

  it("Services select the broker pods, on ports the container names", () => {
    const sts = statefulSet("ratatoskr");
    const labels = sts.spec!.template.metadata!.labels!;
    const ports = (container(sts).ports ?? []).map((p) => p.name);
    expect(sts.spec!.serviceName).toBe("ratatoskr-headless");
    expect(service("ratatoskr-headless").spec!.clusterIP).toBe("None");
    expect(sts.spec!.replicas).toBe(1);
    for (const name of ["ratatoskr", "ratatoskr-headless"]) {
      const svc = service(name);
      expect(labels).toMatchObject(svc.spec!.selector!);
      for (const p of svc.spec!.ports!) expect(ports, `${name} port ${p.name}`).toContain(p.targetPort);
    }
    const np = policy("ratatoskr-broker").spec!;
    expect(labels).toMatchObject(np.podSelector!.matchLabels!);
    // The generator pods are among those the NetworkPolicy admits.
    const admitted = np.ingress![0]!.from![0]!.podSelector!.matchLabels!;
    expect(job("ratatoskr-bench").spec!.template.metadata!.labels).toMatchObject(admitted);
  });

  it("the broker reads only variables `ratatoskr broker` knows, from files it mounts, and is probed with the image's health check", () => {
    const sts = statefulSet("ratatoskr");
    const c = container(sts);
    const known = new Set(BROKER_SETTINGS.map((x) => x.env));
    const env = c.env ?? [];
    for (const e of env) expect(known, e.name).toContain(e.name);
    const mounts = mountPaths(c);
    for (const e of env.filter((x) => ["RATATOSKR_TLS_CERT", "RATATOSKR_TLS_KEY", "RATATOSKR_TOKEN_FILE", "RATATOSKR_DATA_DIR"].includes(x.name))) {
      expect(mounts.some((m) => e.value === m || e.value!.startsWith(`${m}/`)), `${e.name}=${e.value} is on a mounted volume`).toBe(true);
    }
    expect((sts.spec!.volumeClaimTemplates ?? []).map((v) => v.metadata!.name)).toContain("data");
    const dockerfile = readFileSync(join(dir, "..", "..", "docker", "Dockerfile"), "utf8");
    expect(dockerfile).toContain("COPY healthcheck.mjs /app/healthcheck.mjs");
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(probe!.exec!.command).toEqual(["/usr/bin/node", "/app/healthcheck.mjs"]);
    // The pod's grace period outlasts the broker's own shutdown grace.
    const grace = Number(env.find((e) => e.name === "RATATOSKR_SHUTDOWN_GRACE_MS")!.value);
    expect(podSpec(sts).terminationGracePeriodSeconds! * 1000).toBeGreaterThan(grace);
  });

  it("the generator Job is Indexed with one shard per index, and its command line parses as `ratatoskr bench`", async () => {
    const bench = job("ratatoskr-bench");
    const spec = bench.spec!;
    const c = container(bench);
    expect(spec.completionMode).toBe("Indexed");
    expect(spec.parallelism).toBe(spec.completions);
    expect(spec.maxFailedIndexes).toBe(spec.completions);
    expect(spec.backoffLimitPerIndex).toBe(0); // a retried shard would publish twice
    expect(argsOf(c).find((a) => a.startsWith("--shard="))).toBe(`--shard=$(JOB_COMPLETION_INDEX)/${spec.completions}`);
    expect(c.env!.find((e) => e.name === "JOB_COMPLETION_INDEX")!.valueFrom!.fieldRef!.fieldPath).toBe("metadata.annotations['batch.kubernetes.io/job-completion-index']");
    expect(c.command).toEqual(["/usr/bin/node", "/app/dist/cli/main.js"]);
    const [sub, ...rest] = expand(argsOf(c), c.env!);
    expect(sub).toBe("bench");
    await parses(benchCommand as CommandModule, ["bench", ...rest]);
    // Files it names are on mounted volumes.
    const mounts = mountPaths(c);
    for (const a of rest.filter((x) => /^(\/|--(tls-ca|token-file|out)=\/)/.test(x))) {
      const path = a.includes("=") ? a.slice(a.indexOf("=") + 1) : a;
      expect(mounts.some((m) => path.startsWith(`${m}/`)), `${a} is on a mounted volume`).toBe(true);
    }
    expect(argsOf(c)).toContain("--target=ratatoskr:50051");
    expect(service("ratatoskr").spec!.ports!.map((p) => p.port)).toEqual([50051, 9464]);
  });

  it("the merge Job reads the shard directories the generator pods write, with `ratatoskr report merge`", async () => {
    const bench = job("ratatoskr-bench");
    const merge = job("ratatoskr-merge");
    const out = argsOf(container(bench)).find((a) => a.startsWith("--out="))!.slice("--out=".length);
    expect(out).toBe("/reports/$(RUN_ID)/shards/shard-$(JOB_COMPLETION_INDEX)");
    expect(argsOf(container(merge)).slice(0, 3)).toEqual(["report", "merge", "/reports/$(RUN_ID)/shards"]);
    const [report, ...mergeArgs] = expand(argsOf(container(merge)), container(merge).env!);
    expect(report).toBe("report");
    await parses(reportMergeCommand as CommandModule, mergeArgs);
    const claim = (j: IJob) => {
      const mount = container(j).volumeMounts!.find((m) => m.mountPath === "/reports")!;
      return podSpec(j).volumes!.find((v) => v.name === mount.name)!.persistentVolumeClaim!.claimName;
    };
    expect(claim(bench)).toBe("ratatoskr-reports");
    expect(claim(merge)).toBe("ratatoskr-reports");
    expect((find("PersistentVolumeClaim", "ratatoskr-reports") as IPersistentVolumeClaim).spec!.accessModes).toEqual(["ReadWriteMany"]);
  });

  it("names the image scripts/build-images.sh builds, everywhere", () => {
    const built = /IMAGE=\$\{RATATOSKR_BROKER_IMAGE:-([^}]+)\}/.exec(readFileSync(join(dir, "..", "..", "scripts", "build-images.sh"), "utf8"))![1];
    const images = [container(statefulSet("ratatoskr")), container(job("ratatoskr-bench")), container(job("ratatoskr-merge"))].map((c) => c.image);
    expect(new Set(images)).toEqual(new Set([built]));
  });
});

describe("deploy/k8s/run.sh (with a stand-in kubectl)", () => {
  /** A kubectl that logs each call, keeps what is applied, and reports every Job finished. */
  function fakeKubectl(secrets: string[]): { bin: string; log: string; applied: string } {
    const bin = mkdtempSync(join(tmpdir(), "rt-kubectl-"));
    const log = join(bin, "calls.log");
    const applied = join(bin, "applied.yaml");
    writeFileSync(
      join(bin, "kubectl"),
      `#!/usr/bin/env bash
echo "$*" >> ${log}
case "$1 $2" in
  "get secret") case " ${secrets.join(" ")} " in *" $3 "*) exit 0 ;; *) echo "NotFound" >&2; exit 1 ;; esac ;;
  "get job") if [ "$3" = ratatoskr-bench ]; then echo "$(cat ${bin}/completions) 0"; else echo "1 "; fi ;;
  "apply -f") if [ "$3" = - ]; then cat >> ${applied}; echo "---" >> ${applied}; fi ;;
  "create configmap") echo "kind: ConfigMap" ;;
  "logs job/ratatoskr-merge") echo "PASS: report in /reports/x/merged/" ;;
esac
exit 0
`,
    );
    chmodSync(join(bin, "kubectl"), 0o755);
    return { bin, log, applied };
  }

  it("applies broker, ConfigMaps and an N-shard Job, waits for every index, then merges", async () => {
    const k = fakeKubectl(["ratatoskr-tls", "ratatoskr-tokens", "ratatoskr-ca", "ratatoskr-bench-token"]);
    writeFileSync(join(k.bin, "completions"), "3");
    const { stdout } = await run("bash", [join(dir, "run.sh"), "scenarios/sharded/sharded-smoke.yaml", "3", "0"], {
      env: { ...process.env, PATH: `${k.bin}:${process.env.PATH}`, RATATOSKR_K8S_POLL_S: "0", RATATOSKR_RUN_ID: "k8s-test" },
    });
    expect(stdout).toContain("run.sh: run k8s-test, 3 shards");
    expect(stdout).toContain("run.sh: shards finished: 3 exited 0, 0 did not");
    const calls = readFileSync(k.log, "utf8").trim().split("\n");
    const order = ["apply -f " + join(dir, "broker.yaml"), "rollout status statefulset/ratatoskr", "create configmap ratatoskr-scenario", "create configmap ratatoskr-run --from-literal=RUN_ID=k8s-test", "delete job ratatoskr-bench ratatoskr-merge", "get job ratatoskr-bench", "apply -f " + join(dir, "merge-job.yaml"), "logs job/ratatoskr-merge"];
    const at = order.map((prefix) => calls.findIndex((c) => c.startsWith(prefix)));
    expect(at.every((i) => i >= 0), `calls:\n${calls.join("\n")}`).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    // The Job it applied has 3 shards throughout, and is still a valid Job.
    const jobs = manifests(readFileSync(k.applied, "utf8"), "applied").filter((m) => m?.kind === "Job");
    expect(jobs).toHaveLength(1);
    const applied = jobs[0] as IJob;
    expect([applied.spec!.completions, applied.spec!.parallelism, applied.spec!.maxFailedIndexes]).toEqual([3, 3, 3]);
    expect(argsOf(container(applied))).toContain("--shard=$(JOB_COMPLETION_INDEX)/3");
    expect(() => model(applied).validate()).not.toThrow();
  });

  it("stops before applying anything when a Secret is missing, naming it and how to make it", async () => {
    const k = fakeKubectl(["ratatoskr-tls", "ratatoskr-tokens"]);
    const failed = await run("bash", [join(dir, "run.sh"), "scenarios/sharded/sharded-smoke.yaml"], { env: { ...process.env, PATH: `${k.bin}:${process.env.PATH}` } }).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain("run.sh: missing Secrets: ratatoskr-ca ratatoskr-bench-token");
    expect(failed?.stderr).toContain("kubectl create secret generic ratatoskr-ca --from-file=ca.crt");
    expect(readFileSync(k.log, "utf8")).not.toMatch(/^apply/m);
    expect(existsSync(k.applied)).toBe(false);
  });
});
