// The GitOps health checks judged against the fixtures in examples/gitops/health/fixtures/:
// Argo CD's Lua (as the argocd-cm snippet carries it) run by a real Lua 5.1 interpreter, as
// Argo CD runs it, and Flux's healthCheckExprs evaluated by a CEL engine in Flux's order.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { evaluate } from '@marcbachmann/cel-js';
import { parse, parseAllDocuments } from 'yaml';
import { REASON_CLASS } from '../../operator/reason-classes.js';
import { setReady, type ReadyInput } from '../../operator/runtime/kstatus.js';
import { kstatusOf, type KstatusVerdict } from '../../operator/test-support/kstatus.js';
import { createValidator, formatProblem } from '../../operator/validation/validator.js';
import { argocdHealthConfigMap, ARGOCD_HEALTH_CONFIGMAP, healthKey } from '../gitops-health.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects are read structurally */
const root = join(import.meta.dirname, '../..');
const fixtureDir = join(root, 'examples/gitops/health/fixtures');
const LUA = 'lua5.1';

type ArgoStatus = 'Healthy' | 'Progressing' | 'Degraded' | 'Suspended';
type FluxStatus = 'Current' | 'InProgress' | 'Failed' | 'Unknown';
interface Fixture {
  file: string;
  case: string;
  expect: { argocd: { status: ArgoStatus; message: string }; flux: FluxStatus };
  /** Why the current operator never writes these conditions (an older operator's object, a shape kstatus must still read). */
  notWrittenByOperator?: string;
  object: any;
}

const fixtures: Fixture[] = readdirSync(fixtureDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .flatMap((file) => parseAllDocuments(readFileSync(join(fixtureDir, file), 'utf8')).map((d) => ({ file, ...(d.toJS() as any) })));
const validator = createValidator();
const kinds = validator.kinds;

/** A Lua 5.1 literal of a JSON value; null becomes nil, as when Argo CD hands an object to Lua. */
function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    // Lua 5.1 knows \ddd but not \u: escape bytes, not characters.
    const bytes = [...Buffer.from(value, 'utf8')];
    return `"${bytes.map((b) => (b === 0x22 || b === 0x5c || b < 0x20 || b > 0x7e ? `\\${b}` : String.fromCharCode(b))).join('')}"`;
  }
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(', ')}}`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined);
  return `{${entries.map(([k, v]) => `[${luaLiteral(k)}] = ${luaLiteral(v)}`).join(', ')}}`;
}

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'kopia-gitops-health-'));
  let version: string;
  try {
    version = execFileSync(LUA, ['-e', 'io.write(_VERSION)'], { encoding: 'utf8' });
  } catch (err) {
    throw new Error(`${LUA} is not on PATH (scripts/install-system-deps.sh installs it): ${(err as Error).message}`);
  }
  // Argo CD runs Lua 5.1 (gopher-lua): a newer interpreter would accept what Argo CD refuses.
  expect(version).toBe('Lua 5.1');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What Argo CD makes of obj with this health script: the global obj, the table the chunk returns. */
function runArgoHealth(script: string, obj: unknown): { status: string; message: string } {
  const scriptFile = join(scratch, 'health.lua');
  writeFileSync(scriptFile, script);
  const harness = [
    `obj = ${luaLiteral(obj)}`,
    `local hs = dofile(${luaLiteral(scriptFile)})`,
    `assert(type(hs) == "table", "the health script returned no table")`,
    `io.write(tostring(hs.status), "\\n", tostring(hs.message))`,
  ].join('\n');
  const out = execFileSync(LUA, ['-'], { input: harness, encoding: 'utf8' });
  const [status, ...message] = out.split('\n');
  return { status, message: message.join('\n') };
}

interface HealthCheckExprs {
  apiVersion: string;
  kind: string;
  current: string;
  inProgress?: string;
  failed?: string;
}

/** kstatus of obj as Flux's CEL status evaluator computes it (fluxcd/pkg runtime/cel, RFC 0009). */
function fluxStatus(exprs: HealthCheckExprs, obj: any): FluxStatus {
  const observed = obj.status?.observedGeneration;
  if (observed !== undefined && obj.metadata?.generation !== undefined && observed !== obj.metadata.generation) return 'InProgress';
  const data = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
  for (const [expr, status] of [
    [exprs.inProgress, 'InProgress'],
    [exprs.failed, 'Failed'],
    [exprs.current, 'Current'],
  ] as const) {
    if (!expr) continue;
    let result: unknown;
    try {
      result = evaluate(expr, data);
    } catch {
      return 'Unknown'; // the status reader's error: Flux polls again until the timeout
    }
    if (typeof result !== 'boolean') return 'Unknown';
    if (result) return status;
  }
  return 'InProgress';
}

function yamlDocs(file: string): any[] {
  return parseAllDocuments(readFileSync(join(root, file), 'utf8')).map((d) => d.toJS() as any);
}

function fluxReference(): HealthCheckExprs[] {
  const patch = parse(readFileSync(join(root, 'examples/gitops/flux/health-check-exprs.yaml'), 'utf8')) as any;
  return patch.spec.healthCheckExprs;
}

describe('fixtures', () => {
  it('cover every kopia.io kind, and each is a valid object of the API', () => {
    expect([...new Set(fixtures.map((f) => f.object.kind))].sort()).toEqual([...kinds].sort());
    for (const f of fixtures) {
      const problems = validator.validate(f.object).map(formatProblem);
      expect({ fixture: `${f.file}: ${f.case}`, problems }).toEqual({ fixture: `${f.file}: ${f.case}`, problems: [] });
    }
  });

  it("each object's Ready, Reconciling and Stalled are what the operator's setReady writes for its Ready", () => {
    const kstatusTypes = ['Ready', 'Reconciling', 'Stalled'];
    const trio = (conditions: any[]) =>
      conditions
        .filter((c) => kstatusTypes.includes(c.type))
        .map(({ lastTransitionTime: _, ...c }) => c)
        .sort((a, b) => a.type.localeCompare(b.type));
    for (const f of fixtures) {
      const conditions: any[] | undefined = f.object.status?.conditions;
      const ready = conditions?.find((c) => c.type === 'Ready');
      if (!ready) continue; // no status yet: nothing written
      // Backup and Restore pass { failed } for phase Failed (backup-status.ts, restore-operator.ts).
      const failed = ['Backup', 'Restore'].includes(f.object.kind) && f.object.status.phase === 'Failed';
      const written = setReady(undefined, ready, ready.observedGeneration, new Date(ready.lastTransitionTime), { failed });
      const name = `${f.file}: ${f.case}`;
      if (f.notWrittenByOperator) {
        // The label must be needed: a fixture the operator could write says so by having no label.
        expect({ fixture: name, differs: !isDeepStrictEqual(trio(conditions!), trio(written)) }).toEqual({ fixture: name, differs: true });
      } else {
        // A reason the operator does not have would be classed Stalled by default: say one it writes.
        expect({ fixture: name, knownReason: Object.hasOwn(REASON_CLASS, ready.reason) }).toEqual({ fixture: name, knownReason: true });
        expect({ fixture: name, conditions: trio(conditions!) }).toEqual({ fixture: name, conditions: trio(written) });
      }
    }
  });

  it('Argo CD and Flux agree on each (Healthy and Suspended are Current; no status yet is Unknown to Flux)', () => {
    const flux: Record<ArgoStatus, FluxStatus> = {
      Healthy: 'Current',
      Suspended: 'Current',
      Progressing: 'InProgress',
      Degraded: 'Failed',
    };
    for (const f of fixtures) {
      const expected = f.object.status === undefined ? 'Unknown' : flux[f.expect.argocd.status];
      expect({ fixture: `${f.file}: ${f.case}`, flux: f.expect.flux }).toEqual({ fixture: `${f.file}: ${f.case}`, flux: expected });
    }
  });
});

describe('Argo CD health checks (examples/gitops/argocd)', () => {
  it(`${ARGOCD_HEALTH_CONFIGMAP} is generated from the .lua files`, () => {
    expect(readFileSync(join(root, ARGOCD_HEALTH_CONFIGMAP), 'utf8')).toBe(argocdHealthConfigMap());
  });

  it('the snippet has a health check for every kopia.io kind', () => {
    const cm = parse(readFileSync(join(root, ARGOCD_HEALTH_CONFIGMAP), 'utf8')) as any;
    expect(cm).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'argocd-cm', namespace: 'argocd' } });
    expect(Object.keys(cm.data).sort()).toEqual(kinds.map(healthKey).sort());
  });

  it.each(fixtures.map((f) => [`${f.object.kind}: ${f.case}`, f] as const))('%s', (_name, f) => {
    const cm = parse(readFileSync(join(root, ARGOCD_HEALTH_CONFIGMAP), 'utf8')) as any;
    const script = cm.data[healthKey(f.object.kind)] as string;
    expect(runArgoHealth(script, f.object)).toEqual(f.expect.argocd);
  });
});

describe('Flux healthCheckExprs (examples/gitops/flux)', () => {
  it('the reference has one entry per kopia.io kind', () => {
    const reference = fluxReference();
    expect(reference.map((e) => e.kind).sort()).toEqual([...kinds].sort());
    for (const e of reference) expect(e.apiVersion).toBe('kopia.io/v1alpha1');
  });

  it("the example's kustomization.yaml patches the reference into each of its Flux Kustomizations", () => {
    const kustomization = parse(readFileSync(join(root, 'examples/gitops/flux/kustomization.yaml'), 'utf8')) as any;
    expect(kustomization.patches).toEqual([
      { path: 'health-check-exprs.yaml', target: { group: 'kustomize.toolkit.fluxcd.io', kind: 'Kustomization' } },
    ]);
    const media = yamlDocs('examples/gitops/flux/media.yaml').filter((d) => d.kind === 'Kustomization');
    expect(kustomization.resources).toEqual(['media.yaml']);
    for (const k of media) expect(k.apiVersion).toBe('kustomize.toolkit.fluxcd.io/v1');
  });

  it.each(fixtures.map((f) => [`${f.object.kind}: ${f.case}`, f] as const))('%s', (_name, f) => {
    const exprs = fluxReference().find((e) => e.kind === f.object.kind)!;
    expect(fluxStatus(exprs, f.object)).toBe(f.expect.flux);
  });
});

describe('deploy-or-restore ordering (examples/gitops/media)', () => {
  const objects = readdirSync(join(root, 'examples/gitops/media'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => yamlDocs(join('examples/gitops/media', f)).map((o) => ({ ...o, file: f })));
  const one = (kind: string) => objects.filter((o) => o.kind === kind);
  const wave = (o: any) => Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
  const claim = (name: string) => objects.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === name)!;
  const consumers = (name: string) =>
    objects.filter((o) => o.spec?.template?.spec?.volumes?.some((v: any) => v.persistentVolumeClaim?.claimName === name));

  it('Argo CD: each claim in the wave of its consumers and of its Restore; Secret and Repository before the Restore', () => {
    const [restore] = one('Restore');
    for (const pvc of one('PersistentVolumeClaim')) {
      expect(consumers(pvc.metadata.name).length).toBeGreaterThan(0);
      for (const c of consumers(pvc.metadata.name)) expect({ [c.metadata.name]: wave(c) }).toEqual({ [c.metadata.name]: wave(pvc) });
      if (pvc.spec.dataSourceRef?.kind === 'Restore') expect(wave(restore)).toBe(wave(pvc));
    }
    for (const o of [...one('Secret'), ...one('Repository')]) expect(wave(o)).toBeLessThan(wave(restore));
    for (const config of one('BackupConfig')) {
      expect(wave(config)).toBeLessThanOrEqual(wave(restore));
      // Ready only once its claim exists: an earlier wave than the claim's would never end.
      expect(wave(config)).toBeGreaterThanOrEqual(wave(claim(config.spec.source.pvc)));
    }
    for (const schedule of one('BackupSchedule')) expect(wave(schedule)).toBeGreaterThan(wave(restore));
  });

  it('Flux: the Repository stage first, the claim with its consumer and Restore in the next, after the operator', () => {
    const flux = new Map(yamlDocs('examples/gitops/flux/media.yaml').map((d) => [d.metadata.name, d]));
    const stageOf = (o: any) =>
      [...flux.values()].find((k) => k.kind === 'Kustomization' && `./examples/gitops/media/${o.file}`.startsWith(`${k.spec.path}/`));
    const [operator] = yamlDocs('examples/gitops/flux.yaml').filter((d) => d.kind === 'Kustomization');
    expect(operator.spec.wait).toBe(true);
    const repository = stageOf(one('Repository')[0]);
    const app = stageOf(one('Restore')[0]);
    expect(repository.spec.dependsOn).toEqual([{ name: operator.metadata.name }]);
    expect(app.spec.dependsOn).toEqual([{ name: repository.metadata.name }]);
    for (const k of [repository, app]) expect(k.spec.wait).toBe(true);
    for (const o of [...one('Secret'), ...one('Namespace')]) expect(stageOf(o)).toBe(repository);
    for (const o of [...one('BackupConfig'), ...one('PersistentVolumeClaim'), ...one('Deployment'), ...one('BackupSchedule')])
      expect({ [o.metadata.name]: stageOf(o)?.metadata.name }).toEqual({ [o.metadata.name]: app.metadata.name });
  });
});

// The fixtures are chosen cases; this sweeps the operator's own table: for every reason it has
// (REASON_CLASS) and every kind, the conditions setReady writes, and the verdict kstatus gives
// them (operator/test-support/kstatus.ts), must be what the Argo CD Lua and the Flux CEL say too.
describe('Argo CD and Flux agree with kstatus on every reason of the operator, for every kind', () => {
  const at = new Date('2026-12-01T10:00:00Z');
  /** Backup and Restore: the phase Ready=True comes with. */
  const SUCCESS_PHASE: Record<string, string> = { Backup: 'Succeeded', Restore: 'Completed' };
  const SUSPENDABLE = ['BackupSchedule', 'Maintenance'];
  const ARGO_OF: Record<KstatusVerdict, ArgoStatus | undefined> = {
    Current: 'Healthy',
    InProgress: 'Progressing',
    Failed: 'Degraded',
    Terminating: undefined,
  };

  interface SweepCase {
    name: string;
    object: any;
  }

  function object(kind: string, ready: ReadyInput, opts: { phase?: string; failed?: boolean; suspend?: boolean }): any {
    return {
      apiVersion: 'kopia.io/v1alpha1',
      kind,
      metadata: { name: 'jellyfin-config', ...(kind === 'ClusterRepository' ? {} : { namespace: 'media' }), generation: 1 },
      spec: opts.suspend ? { suspend: true } : {},
      status: {
        observedGeneration: 1,
        ...(opts.phase ? { phase: opts.phase } : {}),
        conditions: setReady(undefined, ready, 1, at, { failed: opts.failed }),
      },
    };
  }

  /** What the operator writes: Ready=True, and Ready=False with each reason, in the phase that kind's operator gives it. */
  function sweep(kind: string): SweepCase[] {
    const success = SUCCESS_PHASE[kind];
    const out: SweepCase[] = [];
    for (const suspend of SUSPENDABLE.includes(kind) ? [false, true] : [false]) {
      const tag = suspend ? ' (suspended)' : '';
      out.push({
        name: `Ready=True${tag}`,
        object: object(kind, { status: 'True', reason: 'Ready', message: 'ready' }, { phase: success, suspend }),
      });
      for (const [reason, cls] of Object.entries(REASON_CLASS)) {
        const ready: ReadyInput = { status: 'False', reason, message: `not ready: ${reason}` };
        if (!success) {
          out.push({ name: `${reason}${tag}`, object: object(kind, ready, { suspend }) });
          continue;
        }
        // Waiting: Pending (or no phase yet). Stalled: the final phase, Failed (or Succeeded with
        // files it could not read). A Failed phase is Stalled whatever its reason.
        if (cls === 'progressing') {
          out.push({ name: `${reason}, no phase yet`, object: object(kind, ready, {}) });
          out.push({ name: `${reason}, Pending`, object: object(kind, ready, { phase: 'Pending' }) });
        } else if (kind === 'Backup' && reason === 'FileErrors') {
          out.push({ name: `${reason}, Succeeded`, object: object(kind, ready, { phase: 'Succeeded' }) });
        }
        out.push({ name: `${reason}, Failed`, object: object(kind, ready, { phase: 'Failed', failed: true }) });
      }
    }
    return out;
  }

  /** runArgoHealth for many objects in one Lua process: the chunk is loaded once and run per object, as Argo CD runs it. */
  function runArgoHealthMany(script: string, objects: unknown[]): { status: string; message: string }[] {
    const scriptFile = join(scratch, 'health-many.lua');
    writeFileSync(scriptFile, script);
    const harness = [
      `local check = assert(loadfile(${luaLiteral(scriptFile)}))`,
      ...objects.map(
        (o) =>
          `obj = ${luaLiteral(o)}\nhs = check()\nassert(type(hs) == "table", "the health script returned no table")\n` +
          `io.write(tostring(hs.status), "\\t", tostring(hs.message), "\\n")`,
      ),
    ].join('\n');
    const out = execFileSync(LUA, ['-'], { input: harness, encoding: 'utf8', maxBuffer: 16 << 20 });
    return out
      .trimEnd()
      .split('\n')
      .map((line) => {
        const [status, message] = line.split('\t');
        return { status, message };
      });
  }

  it.each(kinds.map((k) => [k]))('%s', (kind) => {
    const cases = sweep(kind);
    const cm = parse(readFileSync(join(root, ARGOCD_HEALTH_CONFIGMAP), 'utf8')) as any;
    const argo = runArgoHealthMany(
      cm.data[healthKey(kind)] as string,
      cases.map((c) => c.object),
    );
    expect(argo).toHaveLength(cases.length);
    const exprs = fluxReference().find((e) => e.kind === kind)!;
    const disagreements: string[] = [];
    cases.forEach((c, i) => {
      const verdict = kstatusOf(c.object).status;
      const ready = c.object.status.conditions.find((x: any) => x.type === 'Ready');
      const suspended = c.object.spec.suspend === true && verdict === 'Current';
      const expected = { argocd: { status: suspended ? 'Suspended' : ARGO_OF[verdict], message: ready.message }, flux: verdict };
      const got = { argocd: argo[i], flux: fluxStatus(exprs, c.object) };
      if (!isDeepStrictEqual(got, expected)) disagreements.push(`${c.name}: kstatus ${verdict}, got ${JSON.stringify(got)}`);
    });
    expect(disagreements).toEqual([]);
    // The sweep covers every reason, both ways (Ready=True is one more).
    expect(cases.length).toBeGreaterThan(Object.keys(REASON_CLASS).length);
  });
});
