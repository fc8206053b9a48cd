// The catalog operation: every snapshot in the repository, trimmed, sent to the operator's
// intake as one signed upload (10,000 snapshots do not fit a termination message).
import type { Logger } from '../runtime/logger.js';
import { encodeCatalog, signCatalog } from './catalog-upload.js';
import { sendCatalog, UploadFailed } from './catalog-send.js';
import { snapshotListAllCommand } from './kopia-command.js';
import { parseSnapshotList, toCatalogSnapshot } from './kopia-json.js';
import { connect, invalidRequest, KopiaFailure, type KopiaSession } from './kopia-session.js';
import type { CatalogRequest, MoverSuccess } from './mover-contract.js';

export async function catalog(kopia: KopiaSession, log: Logger, req: CatalogRequest): Promise<MoverSuccess> {
  // The signing key is the repository password the mover was given for kopia.
  const password = process.env.KOPIA_PASSWORD;
  if (!password) throw invalidRequest('catalog', 'KOPIA_PASSWORD is not set: the catalog cannot be signed');
  let url: URL;
  try {
    url = new URL(req.upload?.url ?? '');
  } catch {
    throw invalidRequest('catalog', `upload.url is not a URL: ${JSON.stringify(req.upload?.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidRequest('catalog', `upload.url must be http(s): ${url.protocol}`);

  await connect(kopia, log, req);
  const snapshots = parseSnapshotList(await kopia.runOrFail('catalog', snapshotListAllCommand())).map(toCatalogSnapshot);
  const body = encodeCatalog(snapshots);
  const signature = signCatalog(password, url.pathname, body);
  log.info('uploading the catalog', { snapshots: snapshots.length, bytes: body.length, url: url.origin + url.pathname });
  try {
    const sent = await sendCatalog(url.href, body, signature, {
      onRetry: (attempt, reason, delayMs) => log.warn('catalog upload failed, retrying', { attempt, reason, delayMs }),
    });
    log.info('catalog uploaded', { attempts: sent.attempts, status: sent.status });
  } catch (e) {
    if (e instanceof UploadFailed)
      throw new KopiaFailure({ ok: false, operation: 'catalog', errorClass: 'UploadFailed', message: e.message });
    throw e;
  }
  const sources = new Set(snapshots.map((s) => `${s.source.username}@${s.source.hostname}:${s.source.path}`));
  return { ok: true, operation: 'catalog', catalog: { snapshots: snapshots.length, sources: sources.size } };
}
