// The catalog operation: every snapshot in the repository, trimmed, sent to the operator's
// intake as one upload with its token (10,000 snapshots do not fit a termination message).
import type { Logger } from '../runtime/logger.js';
import { encodeCatalog } from './catalog-upload.js';
import { sendCatalog, UploadFailed } from './catalog-send.js';
import { snapshotListAllCommand } from './kopia-command.js';
import { parseSnapshotList, toCatalogSnapshot } from './kopia-json.js';
import { connect, invalidRequest, KopiaFailure, type KopiaSession } from './kopia-session.js';
import { CATALOG_TOKEN_ENV, type CatalogRequest, type MoverSuccess } from './mover-contract.js';

export async function catalog(kopia: KopiaSession, log: Logger, req: CatalogRequest): Promise<MoverSuccess> {
  // The operator's token for this one upload, from the Job's Secret (the secret-value redaction covers it).
  const token = process.env[CATALOG_TOKEN_ENV];
  if (!token) throw invalidRequest('catalog', `${CATALOG_TOKEN_ENV} is not set: the intake would refuse the catalog`);
  let url: URL;
  try {
    url = new URL(req.upload?.url ?? '');
  } catch {
    throw invalidRequest('catalog', `upload.url is not a URL: ${JSON.stringify(req.upload?.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidRequest('catalog', `upload.url must be http(s): ${url.protocol}`);

  await connect(kopia, log, req);
  // Without tags: the operator keeps none, and on a shared repository a tenant's Backups may
  // carry 32 tags of 256 characters each, enough to push everyone's listing past the limit.
  const snapshots = parseSnapshotList(await kopia.runOrFail('catalog', snapshotListAllCommand()))
    .map(toCatalogSnapshot)
    .map(({ tags: _tags, ...s }) => s);
  const body = encodeCatalog(snapshots);
  log.info('uploading the catalog', { snapshots: snapshots.length, bytes: body.length, url: url.origin + url.pathname });
  try {
    const sent = await sendCatalog(url.href, body, token, {
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
