// What the manifests ask of the runtime, checked from inside the running pods: the
// operator and the populator run as a non-root user, cannot write their root filesystem
// and cannot gain privileges. A manifest that only says so is not enough; the container
// runtime must enforce it.
import { kubectl, list, world } from './support/kubectl.js';

// Run by the image's own node: the image has no shell.
const PROBE = `
const fs = require('fs');
const attempt = (f) => { try { f(); return 'allowed'; } catch (e) { return e.code; } };
console.log(JSON.stringify({
  uid: process.getuid(), gid: process.getgid(),
  writeRoot: attempt(() => fs.writeFileSync('/probe', 'x')),
  writeApp: attempt(() => fs.writeFileSync('/app/probe', 'x')),
  setuidRoot: attempt(() => process.setuid(0)),
  shell: fs.existsSync('/bin/sh'),
  capEff: fs.readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\\s*(\\w+)/m)[1],
  noNewPrivs: fs.readFileSync('/proc/self/status', 'utf8').match(/^NoNewPrivs:\\s*(\\d)/m)[1],
}));`;

describe.each(['operator', 'populator'])('the %s pods', (component) => {
  it('run as 65534 on a read-only root filesystem, with no capabilities and no privilege escalation', async () => {
    const pods = await list('pods', world.system, `app.kubernetes.io/name=kopia-operator,app.kubernetes.io/component=${component}`);
    const running = pods.filter((p) => p.status?.phase === 'Running');
    expect(running.length).toBeGreaterThan(0);
    for (const pod of running) {
      const container = pod.spec.containers[0].name;
      const seen = JSON.parse(await kubectl(['exec', '-n', world.system, pod.metadata.name, '-c', container, '--', 'node', '-e', PROBE]));
      expect(seen).toEqual({
        uid: 65534,
        gid: 65534,
        writeRoot: 'EROFS',
        writeApp: 'EROFS',
        setuidRoot: 'EPERM',
        shell: false,
        capEff: '0000000000000000',
        noNewPrivs: '1',
      });
    }
  }, 120_000);
});
