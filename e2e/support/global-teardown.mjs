export default async function globalTeardown() {
  const world = globalThis.__kopiaTestWorld;
  try {
    if (world) await stopUnlessKept(world);
  } finally {
    globalThis.__kopiaUnregisterTsx?.();
  }
}

async function stopUnlessKept(world) {
  if (process.env.KOPIA_TEST_KEEP === '1') {
    process.stderr.write(`[test-world] kept running at ${world.controlPlane.dir} (KOPIA_TEST_KEEP=1)\n`);
    return;
  }
  await world.stop();
}
