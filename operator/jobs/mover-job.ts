// A mover Job's life, written once for every kind that runs one (verify, backup, restore,
// maintenance), as VolSync's movers share one interface:
//   observe  — the Job under its deterministic name, from the informer cache;
//   start    — create it; AlreadyExists means another pass (or a previous process) made
//              it, and it is adopted, never duplicated;
//   collect  — read the result from the termination message of the Pod it created (not yet
//              in the cache: the owner looks again shortly); the owner writes the
//              result **and the Job's UID** into its status;
//   remove   — only after that status write, delete the Job with a UID precondition, so a
//              failed DELETE loses nothing (the status already holds the result and the
//              next pass only retries the delete) and a newer Job of the same name is safe.
import { isAlreadyExists, isConflict, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import { Jobs } from '../kube/resources.js';
import { MOVER_REQUEST_ENV, parseMoverResult, type MoverRequest, type MoverResult } from '../mover/mover-contract.js';
import type { Informer } from '../runtime/informer.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- Job and Pod bodies are read structurally */
export type JobObject = KubeObject & { spec?: any; status?: any };

export function isJobFinished(job: JobObject): boolean {
  return (job.status?.conditions ?? []).some((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

/** The request a mover Job was started with (its own environment; it holds no secret). */
export function moverRequestOf<T extends MoverRequest>(job: JobObject): T | undefined {
  const env = (job.spec?.template?.spec?.containers?.[0]?.env ?? []) as { name: string; value?: string }[];
  const raw = env.find((e) => e.name === MOVER_REQUEST_ENV)?.value;
  return raw ? (JSON.parse(raw) as T) : undefined;
}

/**
 * How long after a Job finished its Pod may be missing from the cache before the Job alone
 * is believed (the Pod's watch event can trail the Job's; a Pod deleted by hand never comes).
 */
export const POD_CACHE_GRACE_MS = 60_000;
/** Looks again after this while a finished Job's Pod is not in the cache yet. */
export const RESULT_PENDING_REQUEUE_MS = 1_000;

/** The Job counts a Pod that ran to an end (so that Pod holds the answer). */
function ranPod(job: JobObject): boolean {
  return (job.status?.succeeded ?? 0) + (job.status?.failed ?? 0) > 0;
}

/** When the Job's Complete or Failed condition was set (epoch ms; 0 if it says nothing). */
function finishedAt(job: JobObject): number {
  const done = (job.status?.conditions ?? []).find((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  const at = Date.parse(done?.lastTransitionTime ?? job.status?.completionTime ?? '');
  return Number.isNaN(at) ? 0 : at;
}

/** The volume the ServiceAccount admission adds to a Pod (never to a Job's template). */
const isInjectedTokenMount = (m: { name?: string }) => /^kube-api-access-/.test(m.name ?? '');

/** What a container runs and sees: the fields a Pod must share with the Job's template to be the Job's. */
function containerRuns(c: any): unknown {
  return {
    name: c.name,
    image: c.image,
    command: c.command,
    args: c.args,
    workingDir: c.workingDir,
    env: c.env,
    envFrom: c.envFrom,
    securityContext: c.securityContext,
    volumeMounts: (c.volumeMounts ?? []).filter((m: any) => !isInjectedTokenMount(m)),
  };
}

/** JSON with sorted keys, so two objects the API server defaulted alike compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/**
 * The Pod runs what the Job's template says: the same containers (image, command, env,
 * mounts, security) over the same volumes. A Pod anyone in the namespace created with the
 * Job's labels is adopted by the Job controller (it then carries the controller owner
 * reference too); unless it runs exactly the mover the operator built, its answer is not
 * the mover's.
 */
export function podRunsTemplate(job: JobObject, pod: JobObject): boolean {
  const template = job.spec?.template?.spec;
  const spec = pod.spec;
  if (!template || !spec) return false;
  const runs = (s: any) => canonical([...(s.initContainers ?? []), ...(s.containers ?? [])].map(containerRuns));
  if (runs(template) !== runs(spec)) return false;
  const templateVolumes = new Map<string, string>((template.volumes ?? []).map((v: any) => [v.name, canonical(v)]));
  const mounted = new Set<string>(
    [...(spec.initContainers ?? []), ...(spec.containers ?? [])].flatMap((c: any) => (c.volumeMounts ?? []).map((m: any) => m.name)),
  );
  for (const v of spec.volumes ?? []) {
    if (!mounted.has(v.name) || isInjectedTokenMount(v)) continue;
    if (templateVolumes.get(v.name) !== canonical(v)) return false;
  }
  return true;
}

export class MoverJobs {
  constructor(
    private readonly client: KubeClient,
    private readonly jobs: Informer<JobObject>,
    private readonly pods: Informer<JobObject>,
  ) {}

  get(namespace: string, name: string): JobObject | undefined {
    return this.jobs.get(`${namespace}/${name}`);
  }

  /**
   * Creates the Job and returns it as created (with its UID); one that already exists under
   * the name is adopted (the watch brings it) and undefined is returned.
   */
  async start(desired: KubeObject): Promise<KubeObject | undefined> {
    try {
      return await this.client.create(Jobs, desired);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      return undefined;
    }
  }

  /**
   * The mover's answer: its termination message, else why the Job or Pod failed; undefined
   * while a finished Job's Pod is not in the cache yet (the owner looks again shortly).
   * Only a Pod the Job owns (its controller owner reference) and that runs exactly the Job's
   * template counts: anyone who may create Pods in the namespace can label one like it, have
   * the Job controller adopt it, and have it "answer".
   */
  result(job: JobObject, now: Date): MoverResult | undefined {
    const pods = this.pods
      .list()
      .filter(
        (p) =>
          p.metadata.namespace === job.metadata.namespace &&
          (p.metadata.ownerReferences ?? []).some((r) => r.controller === true && r.uid === job.metadata.uid) &&
          podRunsTemplate(job, p),
      )
      .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
    if (pods.length === 0 && ranPod(job) && now.getTime() - finishedAt(job) < POD_CACHE_GRACE_MS) return undefined;
    const terminated = pods[0]?.status?.containerStatuses?.[0]?.state?.terminated;
    if (terminated?.message) return parseMoverResult(terminated.message);
    // Killed before it could answer (OOMKilled, say): the container's own reason says why. A
    // plain crash ("Error") is told better by the Pod's or the Job's failure below.
    if (terminated?.reason && terminated.exitCode !== 0 && terminated.reason !== 'Error')
      return parseMoverResult(`the mover container ended ${terminated.reason} (exit code ${terminated.exitCode}) without a result`);
    const failed = (job.status?.conditions ?? []).find((c: any) => c.type === 'Failed' && c.status === 'True');
    const podFailure = pods[0]?.status?.message;
    return parseMoverResult(podFailure ?? (failed ? `${failed.reason}: ${failed.message}` : undefined));
  }

  /**
   * Deletes this very Job (UID precondition). Already gone, already being deleted, or
   * replaced by a newer Job of the same name: nothing to do.
   */
  async remove(job: JobObject): Promise<void> {
    if (job.metadata.deletionTimestamp) return;
    try {
      await this.client.delete(Jobs, job.metadata.namespace, job.metadata.name!, {
        propagationPolicy: 'Background',
        uid: job.metadata.uid,
      });
    } catch (e) {
      if (!isConflict(e)) throw e; // 409: the UID precondition failed, the name holds another Job
    }
  }
}
