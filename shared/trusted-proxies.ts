/**
 * `--trusted-proxies`: the peers whose X-Real-IP the responder passes on as
 * sent. A proxy in front of the responder (ingress-nginx, for one) writes the
 * client's address into X-Real-IP; from any other peer the header is the
 * client's own claim and is replaced by the peer's address.
 */
import { BlockList, isIP } from 'node:net';

export interface TrustedProxies {
  /** The CIDRs as given, for logs and errors. */
  readonly ranges: readonly string[];
  has(address: string | undefined): boolean;
}

export const NO_TRUSTED_PROXIES: TrustedProxies = { ranges: [], has: () => false };

/** Comma-separated CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses; empty: none. Throws naming the bad entry. */
export function parseTrustedProxies(raw: string): TrustedProxies {
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) return NO_TRUSTED_PROXIES;
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (family === 0 || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
      throw new Error(`expected comma-separated CIDRs such as 10.0.0.0/8 or fd00::/8, got ${JSON.stringify(entry)}`);
    }
    list.addSubnet(address!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return {
    ranges: entries,
    has(peer) {
      if (!peer) return false;
      const family = isIP(peer);
      // An IPv4 peer on a dual-stack socket reads ::ffff:a.b.c.d; BlockList matches it against IPv4 ranges.
      return family !== 0 && list.check(peer, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
