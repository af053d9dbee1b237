/**
 * Responder ports held in one ConfigMap (kueuer-system/kueuer-responder-ports:
 * port → "namespace/name at epoch-ms"), so two webhook replicas admitting two
 * Services at the same moment never hand out the same port: a reservation is
 * a write carrying the resourceVersion read, and of two concurrent writes the
 * apiserver keeps one and answers the other 409. The loser re-reads, sees the
 * port taken, and the Service is decided again with it marked used.
 *
 * A reservation holds while its Service carries that port (the Service
 * cache) or for a grace period after it was made (the Service is between
 * admission and storage); after that it is stale and may be taken over, so
 * deleted or restored Services free their ports without a cleanup loop.
 */
import type { CoreV1Api, V1ConfigMap, V1Service } from '@kubernetes/client-node';
import { retryOnConflict, statusOf } from '../../shared/kube/cluster.js';
import { usedResponderPorts } from '../../shared/service-routes.js';

export interface Reservation {
  service: string;
  atMs: number;
}

/** How long a reservation holds without its Service in the cache. */
export const RESERVATION_GRACE_MS = 60_000;
const CONFLICT_RETRIES = 20;
/**
 * Between tries after losing a write: a short random pause (10–20 ms), so the writers spread out and
 * an admission (5 s for the apiserver) fits all 20 tries even when many Services arrive at once.
 */
const CONFLICT_PAUSE = { baseMs: 20, capMs: 20, jitter: true };

export function parseReservations(data: Record<string, string> | undefined): Map<number, Reservation> {
  const out = new Map<number, Reservation>();
  for (const [port, value] of Object.entries(data ?? {})) {
    const m = /^(\S+) at (\d+)$/.exec(value);
    if (/^\d+$/.test(port) && m) out.set(Number(port), { service: m[1]!, atMs: Number(m[2]) });
  }
  return out;
}

/** The ports reserved for a Service other than `except` that still hold. Pure. */
export function heldPorts(
  reservations: ReadonlyMap<number, Reservation>,
  carriesPort: (service: string, port: number) => boolean,
  except: string,
  nowMs: number,
): Set<number> {
  const held = new Set<number>();
  for (const [port, r] of reservations) {
    if (r.service === except) continue;
    if (carriesPort(r.service, port) || nowMs - r.atMs < RESERVATION_GRACE_MS) held.add(port);
  }
  return held;
}

/** A write that lost to another replica's. */
class Contended extends Error {
  constructor(cause: unknown) {
    super((cause as Error).message, { cause });
  }
}

export class PortAllocations {
  /** The last ConfigMap read: what usedPorts adds to the Service cache between reservations. */
  private reservations = new Map<number, Reservation>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly ref: { namespace: string; name: string },
    private readonly services: () => readonly V1Service[],
  ) {}

  private carriesPort = (service: string, port: number): boolean =>
    usedResponderPorts(
      this.services().filter((s) => `${s.metadata?.namespace}/${s.metadata?.name}` === service),
      '',
    ).has(port);

  /** Ports reserved for other Services that still hold (from the last read). */
  reservedPorts(exceptService: string): Set<number> {
    return heldPorts(this.reservations, this.carriesPort, exceptService, Date.now());
  }

  /** Reads the reservations without writing (a dry run's answer); a missing ConfigMap holds none. */
  async refresh(): Promise<void> {
    try {
      this.reservations = parseReservations((await this.core.readNamespacedConfigMap(this.ref)).data);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      this.reservations = new Map();
    }
  }

  /**
   * Reserves `port` for `service` (releasing any other port it held); false when another Service
   * holds it, after which reservedPorts includes it. Throws when the API cannot be written.
   */
  async reserve(service: string, port: number): Promise<boolean> {
    try {
      // Another replica wrote first (409), or deleted the ConfigMap between our read and replace (404): read again.
      return await retryOnConflict(() => this.tryReserve(service, port), {
        retries: CONFLICT_RETRIES,
        isConflict: (err) => err instanceof Contended,
        backoff: CONFLICT_PAUSE,
      });
    } catch (err) {
      const cause = err instanceof Contended ? err.cause : err;
      throw new Error(`cannot reserve responder port ${port} in ConfigMap ${this.ref.namespace}/${this.ref.name}: ${(cause as Error).message}`, { cause });
    }
  }

  /** One read-decide-write; a write another replica got in first throws Contended. */
  private async tryReserve(service: string, port: number): Promise<boolean> {
    let map: V1ConfigMap | null = null;
    try {
      map = await this.core.readNamespacedConfigMap(this.ref);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    this.reservations = parseReservations(map?.data);
    const now = Date.now();
    const holder = this.reservations.get(port);
    if (holder && holder.service !== service && heldPorts(new Map([[port, holder]]), this.carriesPort, service, now).has(port)) return false;
    const data: Record<string, string> = {};
    for (const [p, r] of this.reservations) {
      // Drop this Service's other ports and every stale reservation.
      if (r.service !== service && (this.carriesPort(r.service, p) || now - r.atMs < RESERVATION_GRACE_MS)) data[String(p)] = `${r.service} at ${r.atMs}`;
    }
    data[String(port)] = `${service} at ${now}`;
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { ...this.ref, ...(map ? { resourceVersion: map.metadata?.resourceVersion } : {}) },
      data,
    };
    try {
      if (map) await this.core.replaceNamespacedConfigMap({ ...this.ref, body });
      else await this.core.createNamespacedConfigMap({ namespace: this.ref.namespace, body });
    } catch (err) {
      if (statusOf(err) === 409 || (statusOf(err) === 404 && map)) throw new Contended(err);
      throw err;
    }
    this.reservations = parseReservations(data);
    return true;
  }
}
