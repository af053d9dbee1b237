/**
 * Reloads the serving certificate when its files change on disk (a renewed
 * cert-manager Secret, a rotated mounted file), without a restart. Files are
 * polled, which also sees the symlink swap Kubernetes uses to update mounted
 * Secrets. A pair that fails to load is logged and the old one kept.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server } from 'node:https';
import type { Logger } from 'pino';

export interface TlsFiles {
  cert: string;
  key: string;
}

export function readTls(files: TlsFiles): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

export function watchTls(server: Server, files: TlsFiles, log: Logger, onReload: (ok: boolean) => void, intervalMs = 1000, extra: object = {}): () => void {
  let timer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    // Both files usually change together; wait for the second one.
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        server.setSecureContext({ ...readTls(files), ...extra });
        log.info({ cert: files.cert }, 'reloaded the serving certificate');
        onReload(true);
      } catch (err) {
        log.error({ err: (err as Error).message, cert: files.cert }, 'could not reload the serving certificate; keeping the old one');
        onReload(false);
      }
    }, 100);
  };
  watchFile(files.cert, { interval: intervalMs }, reload);
  watchFile(files.key, { interval: intervalMs }, reload);
  return () => {
    clearTimeout(timer);
    unwatchFile(files.cert, reload);
    unwatchFile(files.key, reload);
  };
}
