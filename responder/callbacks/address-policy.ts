/**
 * Which resolved addresses a callback may connect to (SSRF). Pure: an address
 * and whether the allow-list names its host exactly, in; a refusal naming the
 * range, or nothing, out. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
 * checked as the IPv4 address they carry.
 */
import { BlockList, isIP } from 'node:net';

/** A named set of ranges in CIDR notation (a bare address is that one host); each range's family follows from its address. */
function cidrSet(name: string, cidrs: string[]): [string, BlockList] {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net = '', prefix] = cidr.split('/');
    const type = isIP(net) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(net, prefix === undefined ? (type === 'ipv6' ? 128 : 32) : Number(prefix), type);
  }
  return [name, list];
}

/** Never a callback destination, even when named: cloud metadata, unspecified, multicast and broadcast addresses. */
const NEVER: Array<[string, BlockList]> = [
  cidrSet('a cloud metadata address', [
    // AWS, GCP, Azure, OCI, DigitalOcean… instance metadata; ECS task metadata; EKS Pod Identity Agent.
    '169.254.169.254',
    '169.254.170.2',
    '169.254.170.23',
    'fd00:ec2::254',
    'fd00:ec2::23',
    // Alibaba Cloud metadata (in 100.64/10, which an exact entry would otherwise open).
    '100.100.100.200',
    // Azure WireServer: a public address, so no private range covers it; it hands out node credentials.
    '168.63.129.16',
  ]),
  cidrSet('an unspecified address', ['0.0.0.0/8', '::/128']),
  cidrSet('a multicast or broadcast address', ['224.0.0.0/4', '240.0.0.0/4', 'ff00::/8']),
];

/** Refused unless the allow-list names the host exactly (not through a wildcard). */
const UNLESS_NAMED: Array<[string, BlockList]> = [
  cidrSet('a loopback address', ['127.0.0.0/8', '::1/128']),
  cidrSet('a link-local address', ['169.254.0.0/16', 'fe80::/10']),
  cidrSet('a private or cluster address', [
    '10.0.0.0/8',
    '172.16.0.0/12',
    '192.168.0.0/16',
    '100.64.0.0/10',
    '192.0.0.0/24',
    '198.18.0.0/15',
    'fc00::/7',
    // NAT64: the IPv4 address it embeds could be any of the above.
    '64:ff9b::/96',
    '64:ff9b:1::/48',
  ]),
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
