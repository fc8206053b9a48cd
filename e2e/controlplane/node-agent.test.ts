// The test world itself: Jobs run through the real job controller, claims bind through the
// real PV binder, owners cascade through the real garbage collector.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../operator/kube/kube-client.js';
import { Informer } from '../../operator/runtime/informer.js';
import {
  ConfigMaps,
  Jobs,
  Namespaces,
  Nodes,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
  Secrets,
} from '../../operator/kube/resources.js';
import { createNamespace, until, useTestNamespace } from '../support/cluster.js';
import {
  CONTAINER_IMAGE_DIR,
  containerCapabilities,
  DEFAULT_CAPABILITIES,
  imageUnreadableReason,
  NodeAgent,
  STORAGE_CLASS,
  STORAGE_CLASS_WFFC,
} from '../support/node-agent.js';
import { moverEntrypoint, repoRoot } from '../support/paths.js';
import { claimObject, secretObject } from '../support/objects.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = KubeObject & { spec?: any; status?: any };

const t = useTestNamespace('agent');

function job(name: string, script: string, extra: Record<string, unknown> = {}): Obj {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: t.ns },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: 'kopia-operator:test', command: ['sh', '-c', script], ...extra }],
        },
      },
    },
  };
}

async function finishedJob(name: string): Promise<Obj> {
  let found: Obj | undefined;
  await until(
    `job ${name} to finish`,
    async () => {
      found = await t.client.get<Obj>(Jobs, t.ns, name);
      return (found.status?.conditions ?? []).some((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    },
    60000,
  );
  return found!;
}

async function jobPod(name: string): Promise<Obj> {
  const pods = await t.client.list<Obj>(Pods, t.ns, { labelSelector: `job-name=${name}` });
  expect(pods.items).toHaveLength(1);
  return pods.items[0];
}

describe('jobs on the node agent', () => {
  it('completes a Job whose container exits 0 and reports the termination message', async () => {
    await t.client.create(Jobs, job('ok', 'echo "all good" > /dev/termination-log; exit 0'));
    const done = await finishedJob('ok');
    expect(done.status.succeeded).toBe(1);
    const pod = await jobPod('ok');
    expect(pod.status.phase).toBe('Succeeded');
    expect(pod.status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed', message: 'all good\n' });
  });

  it('fails a Job whose container exits 3, with that code in the pod status', async () => {
    await t.client.create(Jobs, job('three', 'echo "broken on purpose" > /dev/termination-log; exit 3'));
    const done = await finishedJob('three');
    expect(done.status.failed).toBe(1);
    expect(done.status.conditions.find((c: any) => c.type === 'Failed').reason).toBe('BackoffLimitExceeded');
    const pod = await jobPod('three');
    expect(pod.status.phase).toBe('Failed');
    expect(pod.status.containerStatuses[0].state.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
      message: 'broken on purpose\n',
    });
  });

  it('refuses an image it cannot run with a clear pod failure', async () => {
    await t.client.create(Jobs, job('busybox', 'true', { image: 'busybox:1.36' }));
    await finishedJob('busybox');
    const pod = await jobPod('busybox');
    expect(pod.status.phase).toBe('Failed');
    expect(pod.status.reason).toBe('ImageNotSupported');
    expect(pod.status.message).toContain('busybox:1.36');
  });

  it('resolves env from Secrets and ConfigMaps, mounts a Secret volume and honours runAsUser and workingDir', async () => {
    await t.client.create(
      Secrets,
      secretObject({ name: 'creds', namespace: t.ns, stringData: { TOKEN: 's3cr3t', known_hosts: 'host key' } }),
    );
    await t.client.create(ConfigMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'settings', namespace: t.ns },
      data: { MODE: 'fast' },
    } as Obj);
    const j = job(
      'env',
      'printf "%s|%s|%s|%s|%s|%s" "$TOKEN" "$MODE" "$POD_NS" "$(id -u)" "$(pwd)" "$(cat /etc/kopia-test/known_hosts)" > /dev/termination-log',
      {
        env: [
          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'TOKEN' } } },
          { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        ],
        envFrom: [{ configMapRef: { name: 'settings' } }],
        workingDir: '/tmp',
        volumeMounts: [{ name: 'known', mountPath: '/etc/kopia-test', readOnly: true }],
        securityContext: { runAsUser: 65534, runAsGroup: 65534 },
      },
    );
    j.spec.template.spec.volumes = [{ name: 'known', secret: { secretName: 'creds' } }];
    await t.client.create(Jobs, j);
    await finishedJob('env');
    const pod = await jobPod('env');
    expect(pod.status.containerStatuses[0].state.terminated).toMatchObject({
      exitCode: 0,
      message: `s3cr3t|fast|${t.ns}|65534|/tmp|host key`,
    });
  });

  it('keeps a pod waiting with a clear reason while a referenced Secret is missing', async () => {
    await t.client.create(
      Jobs,
      job('nosecret', 'true', { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'absent', key: 'X' } } }] }),
    );
    await until('the pod to report CreateContainerConfigError', async () => {
      const pods = await t.client.list<Obj>(Pods, t.ns, { labelSelector: 'job-name=nosecret' });
      return pods.items[0]?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError';
    });
    const pod = await jobPod('nosecret');
    expect(pod.status.containerStatuses[0].state.waiting.message).toContain('absent');
    await t.client.delete(Jobs, t.ns, 'nosecret', { propagationPolicy: 'Background' });
  });
});

describe('pods pinned to a node', () => {
  const pinned = (name: string, podSpec: Record<string, unknown>) => {
    const j = job(name, 'echo ran > /dev/termination-log');
    Object.assign(j.spec.template.spec, podSpec);
    return j;
  };
  const byName = (node: string) => ({
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
        },
      },
    },
  });

  it('runs a pod pinned to its node by name (matchFields metadata.name) or by its hostname label', async () => {
    const node = (await t.client.list<Obj>(Nodes)).items.find((n) => n.metadata.name === 'local-node')!;
    // As on many clusters, the label is not the name: pinning by either must not be mixed up.
    expect(node.metadata.labels!['kubernetes.io/hostname']).not.toBe('local-node');
    await t.client.create(Jobs, pinned('by-name', byName('local-node')));
    await t.client.create(
      Jobs,
      pinned('by-label', { nodeSelector: { 'kubernetes.io/hostname': node.metadata.labels!['kubernetes.io/hostname'] } }),
    );
    for (const name of ['by-name', 'by-label']) {
      expect((await finishedJob(name)).status.succeeded).toBe(1);
      expect((await jobPod(name)).spec.nodeName).toBe('local-node');
    }
  });

  it('leaves a pod pinned to another node, or to its name as if that were its hostname label, Pending and Unschedulable', async () => {
    await t.client.create(Jobs, pinned('elsewhere', byName('some-other-node')));
    await t.client.create(Jobs, pinned('name-as-label', { nodeSelector: { 'kubernetes.io/hostname': 'local-node' } }));
    for (const name of ['elsewhere', 'name-as-label']) {
      await until(
        `the pod of Job ${name} to be found unschedulable`,
        async () =>
          (await t.client.list<Obj>(Pods, t.ns, { labelSelector: `job-name=${name}` })).items.some((p) =>
            (p.status?.conditions ?? []).some((c: any) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'),
          ),
        30000,
      );
    }
    // Given time to run, they still have not.
    await new Promise((r) => setTimeout(r, 3000));
    for (const name of ['elsewhere', 'name-as-label']) {
      const pod = await jobPod(name);
      expect(pod.spec.nodeName).toBeUndefined();
      expect(pod.status.phase).toBe('Pending');
      expect(pod.status.conditions.find((c: any) => c.type === 'PodScheduled').message).toContain(
        "didn't match Pod's node affinity/selector",
      );
    }
  });
});

describe('capabilities on the node agent', () => {
  // Capability numbers, for reading /proc/self/status masks.
  const CAP = { CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3 } as const;
  const mask = (bits: number[]) => bits.reduce((m, b) => m | (1n << BigInt(b)), 0n);
  let dir: string;
  let results: Record<string, { exitCode: number; message: string }>;

  // One pod, a container per securityContext, each probing its own file only uid 1234 may
  // read or write: reading it, appending to it, chowning it.
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'caps-'));
    chmodSync(dir, 0o755);
    const probe = [
      'can() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }',
      'status() { grep "^$1:" /proc/self/status | cut -f2; }',
      'f="/data/$CONTAINER.txt"',
      `echo "read=$(can cat "$f") write=$(can sh -c 'echo more >> "$1"' - "$f") chown=$(can chown 4321:4321 "$f")` +
        ' eff=$(status CapEff) bnd=$(status CapBnd) nnp=$(status NoNewPrivs)" > /dev/termination-log',
    ].join('\n');
    const container = (name: string, securityContext: Record<string, unknown>) => {
      writeFileSync(join(dir, `${name}.txt`), 'for uid 1234 only\n', { mode: 0o600 });
      chownSync(join(dir, `${name}.txt`), 1234, 1234);
      return {
        name,
        image: 'kopia-operator:test',
        command: ['sh', '-c', probe],
        env: [{ name: 'CONTAINER', value: name }],
        securityContext,
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
      };
    };
    const dropAll = (...add: string[]) => ({ drop: ['ALL'], ...(add.length ? { add } : {}) });
    await t.client.create(Pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'caps', namespace: t.ns },
      spec: {
        restartPolicy: 'Never',
        volumes: [{ name: 'data', hostPath: { path: dir } }],
        containers: [
          container('root-default', { runAsUser: 0 }),
          container('root-drop-all', { runAsUser: 0, capabilities: dropAll() }),
          container('root-read-search', { runAsUser: 0, allowPrivilegeEscalation: false, capabilities: dropAll('DAC_READ_SEARCH') }),
          container('root-owner', { runAsUser: 0, capabilities: dropAll('CHOWN', 'FOWNER', 'CAP_DAC_OVERRIDE') }),
          container('nobody', { runAsUser: 65534, runAsGroup: 65534 }),
          container('nobody-read-search', { runAsUser: 65534, runAsGroup: 65534, capabilities: dropAll('DAC_READ_SEARCH') }),
        ],
      },
    } as Obj);
    let pod: Obj | undefined;
    await until('pod caps to finish', async () => {
      pod = await t.client.get<Obj>(Pods, t.ns, 'caps');
      return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    });
    results = Object.fromEntries(pod!.status.containerStatuses.map((c: any) => [c.name, c.state.terminated]));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const probed = (name: string) => {
    expect(results[name].exitCode).toBe(0);
    const fields = Object.fromEntries(
      results[name].message
        .trim()
        .split(' ')
        .map((kv) => kv.split('=')),
    );
    return { ...fields, eff: BigInt(`0x${fields.eff}`), bnd: BigInt(`0x${fields.bnd}`) };
  };

  it('gives root the runtime default set when nothing is asked: it reads any file', () => {
    const numbers: Record<string, number> = { ...CAP, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8, NET_BIND_SERVICE: 10 };
    Object.assign(numbers, { NET_RAW: 13, SYS_CHROOT: 18, MKNOD: 27, AUDIT_WRITE: 29, SETFCAP: 31 });
    const defaults = mask(DEFAULT_CAPABILITIES.map((c) => numbers[c]));
    expect(probed('root-default')).toMatchObject({ read: 'yes', eff: defaults, bnd: defaults });
  });

  it('root with drop ALL cannot read a 0600 file of another uid', () => {
    expect(probed('root-drop-all')).toMatchObject({ read: 'no', write: 'no', chown: 'no', eff: 0n, bnd: 0n });
  });

  it('root with drop ALL and DAC_READ_SEARCH reads it but cannot write or chown it; no new privileges', () => {
    const dacReadSearch = mask([CAP.DAC_READ_SEARCH]);
    expect(probed('root-read-search')).toMatchObject({ read: 'yes', write: 'no', chown: 'no', eff: dacReadSearch, nnp: '1' });
    expect(statSync(join(dir, 'root-read-search.txt'))).toMatchObject({ uid: 1234, gid: 1234 });
    expect(readFileSync(join(dir, 'root-read-search.txt'), 'utf8')).toBe('for uid 1234 only\n');
  });

  it('root with CHOWN, FOWNER and DAC_OVERRIDE chowns it', () => {
    expect(probed('root-owner')).toMatchObject({
      read: 'yes',
      write: 'yes',
      chown: 'yes',
      eff: mask([CAP.CHOWN, CAP.DAC_OVERRIDE, CAP.FOWNER]),
      nnp: '0',
    });
    expect(statSync(join(dir, 'root-owner.txt'))).toMatchObject({ uid: 4321, gid: 4321 });
  });

  it('uid 65534 cannot read it, and an added capability does not change that (no ambient capabilities, as containerd)', () => {
    expect(probed('nobody')).toMatchObject({ read: 'no', eff: 0n });
    expect(probed('nobody-read-search')).toMatchObject({ read: 'no', eff: 0n, bnd: mask([CAP.DAC_READ_SEARCH]) });
  });

  it('does not create a container asking for an unknown capability: the pod waits, as with containerd', async () => {
    await t.client.create(Pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'unknown-cap', namespace: t.ns },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'main',
            image: 'kopia-operator:test',
            command: ['true'],
            securityContext: { capabilities: { add: ['NOT_A_CAPABILITY'] } },
          },
        ],
      },
    } as Obj);
    let pod: Obj | undefined;
    await until('the pod to report CreateContainerError', async () => {
      pod = await t.client.get<Obj>(Pods, t.ns, 'unknown-cap');
      return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerError';
    });
    expect(pod!.status.phase).toBe('Pending');
    expect(pod!.status.containerStatuses[0].state.waiting.message).toBe('unknown capability "NOT_A_CAPABILITY"');
  });

  it('computes the set as containerd does: ALL first, then each added, then each dropped', () => {
    expect(containerCapabilities({ capabilities: { add: ['ALL'], drop: ['CHOWN'] } })).not.toContain('CHOWN');
    expect(containerCapabilities({ capabilities: { add: ['ALL'] } })).toHaveLength(41);
    expect(containerCapabilities({ capabilities: { drop: ['ALL'], add: ['cap_chown'] } })).toEqual(['CHOWN']);
    expect(containerCapabilities({ capabilities: { add: ['SYS_ADMIN'], drop: ['SYS_ADMIN'] } })).toEqual(containerCapabilities({}));
    expect(containerCapabilities({ privileged: true, capabilities: { drop: ['ALL'] } })).toBeUndefined();
  });
});

describe('volumes on the node agent', () => {
  const claim = (name: string, storageClassName: string): Obj => claimObject({ name, namespace: t.ns, storageClassName });

  it('binds a claim of the Immediate class and a pod writes into its volume', async () => {
    await t.client.create(PersistentVolumeClaims, claim('data', STORAGE_CLASS));
    await until(
      'claim data to bind',
      async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'data')).status?.phase === 'Bound',
    );
    const j = job('writer', 'mkdir -p /data/sub && echo payload > /data/sub/file.txt', {
      volumeMounts: [{ name: 'data', mountPath: '/data' }],
    });
    j.spec.template.spec.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }];
    j.spec.template.spec.securityContext = { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534 };
    await t.client.create(Jobs, j);
    expect((await finishedJob('writer')).status.succeeded).toBe(1);
    const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'data');
    const pv = await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName);
    expect(readFileSync(join(pv.spec.hostPath.path, 'sub/file.txt'), 'utf8')).toBe('payload\n');
  });

  it('binds a WaitForFirstConsumer claim only once a pod uses it', async () => {
    await t.client.create(PersistentVolumeClaims, claim('lazy', STORAGE_CLASS_WFFC));
    await new Promise((r) => setTimeout(r, 1500));
    expect((await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'lazy')).status?.phase).toBe('Pending');
    const j = job('consumer', 'test -d /data', { volumeMounts: [{ name: 'data', mountPath: '/data' }] });
    j.spec.template.spec.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'lazy' } }];
    await t.client.create(Jobs, j);
    expect((await finishedJob('consumer')).status.succeeded).toBe(1);
    const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'lazy');
    expect(pvc.status.phase).toBe('Bound');
    expect(pvc.metadata.annotations!['volume.kubernetes.io/selected-node']).toBe('local-node');
  });

  it('cascades deletion from an owner to its dependents and releases the volume', async () => {
    const owner = await t.client.create<Obj>(ConfigMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'owner', namespace: t.ns },
    } as Obj);
    const dependent = claim('owned', STORAGE_CLASS);
    dependent.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid! }];
    await t.client.create(PersistentVolumeClaims, dependent);
    await until(
      'claim owned to bind',
      async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'owned')).status?.phase === 'Bound',
    );
    const pvName = (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'owned')).spec.volumeName;
    const hostPath = (await t.client.get<Obj>(PersistentVolumes, undefined, pvName)).spec.hostPath.path;
    await t.client.delete(ConfigMaps, t.ns, 'owner', { propagationPolicy: 'Background' });
    await until(
      'the garbage collector to delete the claim',
      async () => !(await t.client.getOrUndefined(PersistentVolumeClaims, t.ns, 'owned')),
    );
    await until('the released volume to be deleted', async () => !(await t.client.getOrUndefined(PersistentVolumes, undefined, pvName)));
    expect(existsSync(hostPath)).toBe(false);
  });
});

/** Host processes whose environment carries marker=value (the containers of one test's pods). */
function processesMarked(marker: string, value: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(`${marker}=${value}`)) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return pids;
}

describe('pods that end: deleting a namespace stops its running containers, as a kubelet does', () => {
  const MARKER = 'NODE_AGENT_TEST_POD';
  const pod = (ns: string, name: string, script: string, terminationGracePeriodSeconds?: number): Obj => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      restartPolicy: 'Always',
      terminationGracePeriodSeconds,
      containers: [
        { name: 'main', image: 'kopia-operator:test', command: ['sh', '-c', script], env: [{ name: MARKER, value: `${ns}/${name}` }] },
      ],
    },
  });

  it('SIGTERMs every container, SIGKILLs what is left at the grace period, reports how each ended, then removes pods and namespace', async () => {
    const ns = await createNamespace(t.client, 'agent-ending');
    const pods = [
      // Ends at once on SIGTERM, with its background child, though its grace period is the default 30 s.
      pod(ns, 'trapping', "trap 'exit 0' TERM; sleep 900 & wait"),
      // No handler of its own.
      pod(ns, 'plain', 'sleep 900', 3),
      // Ignores SIGTERM (and so does its child): only SIGKILL at the grace period ends it.
      pod(ns, 'ignoring', "trap '' TERM; sleep 900 & wait", 3),
    ];
    // Each pod's last state, when it was first seen being deleted and when it went.
    const last = new Map<string, { obj: Obj; terminatingAt?: number; deletedAt?: number }>();
    const informer = new Informer<Obj>(t.client, Pods, { namespace: ns }).on((event, obj) => {
      const seen = last.get(obj.metadata.name!);
      last.set(obj.metadata.name!, {
        obj,
        terminatingAt: seen?.terminatingAt ?? (obj.metadata.deletionTimestamp ? Date.now() : undefined),
        deletedAt: event === 'DELETED' ? Date.now() : undefined,
      });
    });
    await informer.start();
    try {
      for (const p of pods) await t.client.create(Pods, p);
      await until(
        'the three pods to run',
        async () => pods.every((p) => last.get(p.metadata.name!)?.obj.status?.phase === 'Running'),
        30000,
      );
      const processes = new Map(pods.map((p) => [p.metadata.name!, [] as number[]]));
      await until(
        "each pod's processes (sh and sleep) to be there",
        async () => {
          for (const name of processes.keys()) processes.set(name, processesMarked(MARKER, `${ns}/${name}`));
          return processes.get('trapping')!.length >= 2 && processes.get('ignoring')!.length >= 2 && processes.get('plain')!.length >= 1;
        },
        10000,
      );

      await t.client.delete(Namespaces, undefined, ns);
      await until('the namespace to be gone', async () => !(await t.client.getOrUndefined(Namespaces, undefined, ns)), 30000, 200);

      // From the namespace controller's deletion of the pod to the pod's removal.
      const seconds = (name: string) => (last.get(name)!.deletedAt! - last.get(name)!.terminatingAt!) / 1000;
      const terminated = (name: string) => last.get(name)!.obj.status.containerStatuses[0].state.terminated;
      for (const p of pods) expect(last.get(p.metadata.name!)?.deletedAt).toBeDefined();
      // The trapping pod ends on SIGTERM, long before its 30 s grace period: exit 0.
      expect(seconds('trapping')).toBeLessThan(8);
      expect(terminated('trapping')).toMatchObject({ exitCode: 0, reason: 'Completed' });
      expect(last.get('trapping')!.obj.status.phase).toBe('Succeeded');
      // The ignoring pod lives out its 3 s grace period and no more; SIGKILL is exit code 137.
      expect(seconds('ignoring')).toBeGreaterThanOrEqual(3);
      expect(seconds('ignoring')).toBeLessThan(3 + 5);
      expect(terminated('ignoring')).toMatchObject({ exitCode: 137, reason: 'Error' });
      expect(last.get('ignoring')!.obj.status.phase).toBe('Failed');
      // The plain one ends on SIGTERM or at its grace period, never later.
      expect(seconds('plain')).toBeLessThan(3 + 5);
      expect([137, 143]).toContain(terminated('plain').exitCode);
      // Nothing of any of them is left running: not the shells, not their sleeping children.
      for (const [name, pids] of processes) {
        const alive = pids.filter((pid) => existsSync(`/proc/${pid}`) && processesMarked(MARKER, `${ns}/${name}`).includes(pid));
        expect({ name, alive }).toEqual({ name, alive: [] });
      }
    } finally {
      informer.stop();
    }
  }, 90000);
});

describe('a node that has run for a long time', () => {
  // More than the agent's pod work queue has workers (8): a world that served a handful of
  // user stories, each leaving an application pod that runs for ever.
  const FOREVER = 10;

  it('starts new pods while more pods than it has workers run without end, and ends those when deleted', async () => {
    for (let i = 0; i < FOREVER; i++) {
      await t.client.create(Pods, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `app-${i}`, namespace: t.ns, labels: { story: 'forever' } },
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'main', image: 'kopia-operator:test', command: ['sh', '-c', 'sleep 3600'] }],
        },
      } as Obj);
    }
    await t.client.create(Jobs, job('after-many', 'echo still here > /dev/termination-log'));
    const started = Date.now();
    expect((await finishedJob('after-many')).status.succeeded).toBe(1);
    expect(Date.now() - started).toBeLessThan(20000);
    const running = (await t.client.list<Obj>(Pods, t.ns, { labelSelector: 'story=forever' })).items.filter(
      (p) => p.status?.phase === 'Running',
    );
    expect(running).toHaveLength(FOREVER);

    for (let i = 0; i < FOREVER; i++) await t.client.delete(Pods, t.ns, `app-${i}`);
    await until(
      'the forever pods to be gone',
      async () => (await t.client.list<Obj>(Pods, t.ns, { labelSelector: 'story=forever' })).items.length === 0,
      20000,
      200,
    );
  });
});

describe('a checkout in a private directory (a clone under a 0700 mktemp -d)', () => {
  let privateDir: string;
  let agent: NodeAgent;

  beforeAll(async () => {
    privateDir = mkdtempSync(join(tmpdir(), 'private-checkout-'));
    chmodSync(privateDir, 0o700);
    symlinkSync(repoRoot, join(privateDir, 'checkout'));
    // A second node whose image lives there; it runs only pods bound to it.
    agent = new NodeAgent(t.client, {
      nodeName: `private-${t.ns}`,
      dataDir: join(privateDir, 'node'),
      kopiaBinDir: process.env.KOPIA_BIN_DIR!,
      imageRoot: join(privateDir, 'checkout'),
      imageEntrypoint: moverEntrypoint(CONTAINER_IMAGE_DIR),
      scheduler: false,
      provisioner: false,
    });
    await agent.start();
  });
  afterAll(async () => {
    await agent.stop();
    await t.client.delete(Nodes, undefined, `private-${t.ns}`);
    rmSync(privateDir, { recursive: true, force: true });
  });

  it('runs containers as their runAsUser, the mover included, never silently as root', async () => {
    const onPrivateNode = (j: Obj) => {
      j.spec.template.spec.nodeName = `private-${t.ns}`;
      j.spec.template.spec.securityContext = { runAsUser: 65534, runAsGroup: 65534 };
      return j;
    };
    await t.client.create(Jobs, onPrivateNode(job('whoami', 'id -u > /dev/termination-log')));
    // The mover's own entrypoint (node, tsx and the checkout's code), asked for nothing it knows.
    await t.client.create(
      Jobs,
      onPrivateNode(job('mover', '', { command: undefined, env: [{ name: 'KOPIA_MOVER_REQUEST', value: '{"operation":"whoami"}' }] })),
    );
    await finishedJob('whoami');
    expect((await jobPod('whoami')).status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, message: '65534\n' });
    await finishedJob('mover');
    const mover = (await jobPod('mover')).status.containerStatuses[0].state.terminated;
    expect(JSON.parse(mover.message)).toMatchObject({ ok: false, errorClass: 'InvalidRequest', message: 'unknown operation whoami' });
  });

  it('names a checkout others cannot read as the reason a non-root pod fails', () => {
    const unreadable = mkdtempSync(join(tmpdir(), 'unreadable-image-'));
    try {
      chmodSync(unreadable, 0o700);
      expect(imageUnreadableReason(unreadable, [])).toMatch(/mode 700; other users need r-x/);
      chmodSync(unreadable, 0o755);
      expect(imageUnreadableReason(unreadable, [])).toBeUndefined();
      expect(imageUnreadableReason(unreadable, ['operator/mover/main.ts'])).toContain('no such file');
    } finally {
      rmSync(unreadable, { recursive: true, force: true });
    }
  });
});
