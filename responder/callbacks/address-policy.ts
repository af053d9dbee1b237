/**
 * Which resolved addresses a callback may connect to (SSRF). Pure: an address
 * and whether the allow-list names its host exactly, in; a refusal naming the
 * range, or nothing, out. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
 * checked as the IPv4 address they carry.
 */
import { BlockList, isIP } from 'node:net';

function blockList(ranges: Array<[string, number, 'ipv4' | 'ipv6']>): BlockList {
  const list = new BlockList();
  for (const [net, prefix, type] of ranges) list.addSubnet(net, prefix, type);
  return list;
}

/** Never a callback destination, even when named: cloud metadata, unspecified, multicast and broadcast addresses. */
const NEVER: Array<[string, BlockList]> = [
  [
    'a cloud metadata address',
    blockList([
      // AWS, GCP, Azure, OCI, DigitalOcean… instance metadata; ECS task metadata; EKS Pod Identity Agent.
      ['169.254.169.254', 32, 'ipv4'],
      ['169.254.170.2', 32, 'ipv4'],
      ['169.254.170.23', 32, 'ipv4'],
      ['fd00:ec2::254', 128, 'ipv6'],
      ['fd00:ec2::23', 128, 'ipv6'],
      // Alibaba Cloud metadata (in 100.64/10, which an exact entry would otherwise open).
      ['100.100.100.200', 32, 'ipv4'],
      // Azure WireServer: a public address, so no private range covers it; it hands out node credentials.
      ['168.63.129.16', 32, 'ipv4'],
    ]),
  ],
  [
    'an unspecified address',
    blockList([
      ['0.0.0.0', 8, 'ipv4'],
      ['::', 128, 'ipv6'],
    ]),
  ],
  [
    'a multicast or broadcast address',
    blockList([
      ['224.0.0.0', 4, 'ipv4'],
      ['240.0.0.0', 4, 'ipv4'],
      ['ff00::', 8, 'ipv6'],
    ]),
  ],
];

/** Refused unless the allow-list names the host exactly (not through a wildcard). */
const UNLESS_NAMED: Array<[string, BlockList]> = [
  [
    'a loopback address',
    blockList([
      ['127.0.0.0', 8, 'ipv4'],
      ['::1', 128, 'ipv6'],
    ]),
  ],
  [
    'a link-local address',
    blockList([
      ['169.254.0.0', 16, 'ipv4'],
      ['fe80::', 10, 'ipv6'],
    ]),
  ],
  [
    'a private or cluster address',
    blockList([
      ['10.0.0.0', 8, 'ipv4'],
      ['172.16.0.0', 12, 'ipv4'],
      ['192.168.0.0', 16, 'ipv4'],
      ['100.64.0.0', 10, 'ipv4'],
      ['192.0.0.0', 24, 'ipv4'],
      ['198.18.0.0', 15, 'ipv4'],
      ['fc00::', 7, 'ipv6'],
      // NAT64: the IPv4 address it embeds could be any of the above.
      ['64:ff9b::', 96, 'ipv6'],
      ['64:ff9b:1::', 48, 'ipv6'],
    ]),
  ],
];

function matching(ranges: Array<[string, BlockList]>, address: string, type: 'ipv4' | 'ipv6'): string | undefined {
  return ranges.find(([, list]) => list.check(address, type))?.[0];
}

/**
 * Why a callback may not connect to `address`, or undefined when it may.
 * `named`: the allow-list entry that let the URL through names its host
 * exactly, which opens loopback, link-local and private ranges (a receiver in
 * the cluster, a test's loopback server) but never metadata or unspecified ones.
 */
export function addressRefusal(address: string, named: boolean): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const never = matching(NEVER, address, type);
  if (never) return `${address} is ${never}, never a callback destination`;
  const unlessNamed = matching(UNLESS_NAMED, address, type);
  if (unlessNamed && !named) {
    return `${address} is ${unlessNamed}, allowed only when an entry of the allow-list names this host exactly (not through "*.")`;
  }
  return undefined;
}

/** An IP literal as URL.hostname writes it, without the IPv6 brackets; undefined for a DNS name. */
export function ipLiteral(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) ? bare : undefined;
}
