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
import { LABELS, MANAGED_BY } from './job-builder.js';
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

/**
 * What admission may add to a mover's container without making it someone else's: the
 * environment and token files of cloud workload identities (IRSA, EKS Pod Identity, Azure
 * Workload Identity) and proxy settings. Nothing of it can overlay the mover's code or
 * change what it runs; everything else added to the mover's container refuses the Pod.
 */
const ADDABLE_ENV = /^(AWS_|AZURE_|KUBERNETES_|DD_)|^(HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy)$/;
const ADDABLE_MOUNT_UNDER = '/var/run/secrets/';

/** JSON with sorted keys, so two objects the API server defaulted alike compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

const containersOf = (spec: any): any[] => [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];

/** The fields of a container that must be as the template has them (env, mounts and image are judged apart). */
const FIXED_CONTAINER_FIELDS = [
  'command',
  'args',
  'workingDir',
  'envFrom',
  'lifecycle',
  'livenessProbe',
  'readinessProbe',
  'startupProbe',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'restartPolicy',
] as const;
/**
 * Pod fields that would let another container reach into the mover's processes or send its
 * traffic elsewhere, with what an unset one means (a policy may write the default out).
 */
const FIXED_POD_FIELDS = {
  shareProcessNamespace: false,
  hostPID: false,
  hostIPC: false,
  hostNetwork: false,
  dnsPolicy: 'ClusterFirst',
  dnsConfig: undefined,
  hostAliases: undefined,
} as const;

/**
 * The same image: as written, or pinned to a digest by an image policy — `name:tag@sha256:…`
 * of the same name and tag, or `name@sha256:…` (the tag replaced by its digest).
 */
function sameImage(template: string, pod: string): boolean {
  if (template === pod) return true;
  const [podName, digest] = pod.split('@');
  if (!digest?.startsWith('sha256:')) return false;
  const [templateName] = template.split('@');
  const untagged = (name: string) => name.replace(/:[^:/]+$/, '');
  return podName === templateName || podName === untagged(templateName);
}

/** Why the Pod's container is not the template's, if it is not. */
function containerDiffers(want: any, have: any): string | undefined {
  if (!sameImage(want.image, have.image)) return 'image';
  const field = FIXED_CONTAINER_FIELDS.find((k) => canonical(want[k]) !== canonical(have[k]));
  if (field) return field;
  const env = new Map<string, string>((have.env ?? []).map((e: any) => [e.name, canonical(e)]));
  for (const e of want.env ?? []) if (env.get(e.name) !== canonical(e)) return 'env';
  const wantEnv = new Set((want.env ?? []).map((e: any) => e.name));
  const added = (have.env ?? []).find((e: any) => !wantEnv.has(e.name) && !ADDABLE_ENV.test(e.name));
  if (added) return `env (${added.name} added)`;
  const mounts = new Map<string, string>((have.volumeMounts ?? []).map((m: any) => [m.mountPath, canonical(m)]));
  for (const m of want.volumeMounts ?? []) if (mounts.get(m.mountPath) !== canonical(m)) return 'volumeMounts';
  const wantMounts = new Set((want.volumeMounts ?? []).map((m: any) => m.mountPath));
  const extra = (have.volumeMounts ?? []).find(
    (m: any) => !wantMounts.has(m.mountPath) && !(m.mountPath.startsWith(ADDABLE_MOUNT_UNDER) && !m.mountPath.includes('..')),
  );
  if (extra) return `volumeMounts (${extra.mountPath} added)`;
  return undefined;
}

/**
 * Why the Pod is not the mover its Job's template describes, or undefined when it is. A
 * Pod anyone in the namespace created with the Job's labels is adopted by the Job
 * controller, and anyone may write an owner reference, so ownership alone proves nothing.
 * The template's containers must be there as the template has them — image (or its
 * digest), command, environment, mounts, hooks, probes, where the answer is written — over
 * the same volumes. Admission may add what cannot change what the mover runs or says: cloud
 * identity environment and token files, a tightened security context, a sidecar with
 * volumes of its own (but not one that can reach the mover's processes or volumes).
 */
export function podDiffersFromTemplate(job: JobObject, pod: JobObject): string | undefined {
  const template = job.spec?.template?.spec;
  if (!template) return 'its Job has no template';
  const podField = (Object.keys(FIXED_POD_FIELDS) as (keyof typeof FIXED_POD_FIELDS)[]).find(
    (k) => canonical(template[k] ?? FIXED_POD_FIELDS[k]) !== canonical(pod.spec?.[k] ?? FIXED_POD_FIELDS[k]),
  );
  if (podField) return `the Pod's ${podField} differs`;
  const podContainers = new Map<string, any>(containersOf(pod.spec).map((c) => [c.name, c]));
  const templateNames = new Set(containersOf(template).map((c) => c.name));
  for (const want of containersOf(template)) {
    const have = podContainers.get(want.name);
    if (!have) return `container ${want.name} is missing`;
    const field = containerDiffers(want, have);
    if (field) return `container ${want.name} differs in ${field}`;
  }
  const templateVolumes = new Map<string, string>((template.volumes ?? []).map((v: any) => [v.name, canonical(v)]));
  const added = [...containersOf(pod.spec), ...(pod.spec?.ephemeralContainers ?? [])].filter((c) => !templateNames.has(c.name));
  for (const c of added) {
    const shared = (c.volumeMounts ?? []).find((m: any) => templateVolumes.has(m.name));
    if (shared) return `container ${c.name}, not in the template, mounts the mover's volume ${shared.name}`;
    if (c.targetContainerName) return `ephemeral container ${c.name} targets ${c.targetContainerName}`;
  }
  const podVolumes = new Map<string, string>((pod.spec?.volumes ?? []).map((v: any) => [v.name, canonical(v)]));
  for (const [name, volume] of templateVolumes) if (podVolumes.get(name) !== volume) return `volume ${name} differs`;
  return undefined;
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
    const owned = this.pods
      .list()
      .filter(
        (p) =>
          p.metadata.namespace === job.metadata.namespace &&
          (p.metadata.ownerReferences ?? []).some((r) => r.controller === true && r.uid === job.metadata.uid),
      )
      .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
    const judged = owned.map((p) => ({ pod: p, differs: podDiffersFromTemplate(job, p) }));
    const pods = judged.filter((j) => !j.differs).map((j) => j.pod);
    if (pods.length === 0 && ranPod(job) && now.getTime() - finishedAt(job) < POD_CACHE_GRACE_MS) return undefined;
    if (pods.length === 0 && owned.length > 0) {
      // Only Pods that are not the mover ran: say so, rather than "no result", so a webhook that rewrites Pods is found.
      const why = judged[0].differs;
      return parseMoverResult(
        `Pod ${owned[0].metadata.name} of Job ${job.metadata.name} does not run the Job's template (${why}), so its answer is not taken: ` +
          `a mutating admission webhook changed it, or someone made it with the Job's labels; exclude Pods labelled ${LABELS.managedBy}=${MANAGED_BY} from such webhooks`,
      );
    }
    const moverName = job.spec?.template?.spec?.containers?.[0]?.name;
    const statuses = (pods[0]?.status?.containerStatuses ?? []) as any[];
    const terminated = (statuses.find((c) => c.name === moverName) ?? statuses[0])?.state?.terminated;
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
