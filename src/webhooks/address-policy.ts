// Decides whether an IP address may be a webhook target: global unicast only, so hooks cannot reach inside (SSRF).
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;

const METADATA_REASON = 'it is a cloud metadata address';
const SPECIAL_REASON = 'it is a reserved or special-purpose address';

/** Instance metadata services (AWS, GCP, Azure, OpenStack; AWS IPv6; Alibaba; Oracle): they hand out credentials. */
const METADATA_ADDRESSES = ['169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '192.0.0.192'].map((ip) =>
  ipaddr.parse(ip),
);

const V4_REASONS: Partial<Record<string, string>> = {
  unspecified: 'it is an unspecified address (0.0.0.0/8)',
  broadcast: 'it is the broadcast address',
  multicast: 'it is a multicast address',
  linkLocal: 'it is a link-local address',
  loopback: 'it is a loopback address',
  carrierGradeNat: 'it is a carrier-grade NAT address',
  private: 'it is a private network address',
  reserved: 'it is a reserved address',
};

const V6_REASONS: Partial<Record<string, string>> = {
  unspecified: 'it is the unspecified address',
  linkLocal: 'it is a link-local address',
  multicast: 'it is a multicast address',
  loopback: 'it is a loopback address',
  uniqueLocal: 'it is a unique-local address',
  deprecatedSiteLocal: 'it is a site-local address',
  reserved: 'it is a reserved address',
};

const cidr = (text: string) => ipaddr.parseCIDR(text);
const GLOBAL_UNICAST_V6 = cidr('2000::/3');
const IPV4_COMPATIBLE = cidr('::/96');
const NAT64_WELL_KNOWN = cidr('64:ff9b::/96');
const NAT64_LOCAL_USE = cidr('64:ff9b:1::/48');
const SIX_TO_FOUR = cidr('2002::/16');
const TEREDO = cidr('2001::/32');
const IPV4_TRANSLATED = cidr('::ffff:0:0:0/96');

/**
 * Why `ip` may not be a webhook target, as a short phrase ("it is a loopback address"), or `undefined`
 * when it is a global unicast address. IPv6 forms that carry an IPv4 address are judged by that address.
 */
export function refusalReason(ip: string): string | undefined {
  const version = isIP(ip);
  if (version === 4) return ipv4Reason(ipaddr.IPv4.parse(ip));
  const address = version === 6 ? parseIPv6(ip) : undefined;
  return address ? ipv6Reason(address) : 'it is not an IP address';
}

function parseIPv6(ip: string): IPv6 | undefined {
  // ipaddr.js reads "::a.b.c.d" as IPv4-mapped; the WHATWG URL parser writes it out as the OS reads it.
  const [withoutZone = ''] = ip.split('%', 1);
  try {
    return ipaddr.IPv6.parse(new URL(`http://[${withoutZone}]/`).hostname.slice(1, -1));
  } catch {
    return undefined;
  }
}

function isMetadata(address: IPv4 | IPv6): boolean {
  return METADATA_ADDRESSES.some(
    (metadata) =>
      metadata.kind() === address.kind() && address.match(metadata, metadata.kind() === 'ipv4' ? 32 : 128),
  );
}

function ipv4Reason(address: IPv4): string | undefined {
  if (isMetadata(address)) return METADATA_REASON;
  const range = address.range();
  if (range === 'unicast') return undefined;
  return V4_REASONS[range] ?? SPECIAL_REASON;
}

function ipv6Reason(address: IPv6): string | undefined {
  if (isMetadata(address)) return METADATA_REASON;
  for (const { form, embedded } of embeddedIPv4(address)) {
    const reason = ipv4Reason(embedded);
    if (reason) return `${reason} (${form} form of ${embedded.toString()})`;
  }
  if (address.match(NAT64_LOCAL_USE)) return 'it is a local-use NAT64 address';
  const range = address.range();
  if (range === 'ipv4Mapped' || range === 'rfc6145' || range === 'rfc6052' || range === '6to4') {
    return undefined;
  }
  // Teredo is 2001::/32, inside the reserved 2001::/23; its embedded addresses were judged above.
  if (range === 'teredo') return undefined;
  if (range !== 'unicast') return V6_REASONS[range] ?? SPECIAL_REASON;
  // ipaddr.js calls anything it does not list "unicast"; only 2000::/3 is allocated for global unicast.
  if (!address.match(GLOBAL_UNICAST_V6)) return 'it is outside the global unicast range 2000::/3';
  return undefined;
}

const ipv4FromParts = (high: number, low: number) =>
  new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);

/** The IPv4 addresses an IPv6 address stands for, by transition mechanism. */
function embeddedIPv4(address: IPv6): { form: string; embedded: IPv4 }[] {
  const [, p1, p2, p3, , , p6, p7] = address.parts as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (address.isIPv4MappedAddress()) return [{ form: 'IPv4-mapped', embedded: address.toIPv4Address() }];
  if (address.match(IPV4_TRANSLATED)) return [{ form: 'IPv4-translated', embedded: ipv4FromParts(p6, p7) }];
  if (address.match(NAT64_WELL_KNOWN)) return [{ form: 'NAT64', embedded: ipv4FromParts(p6, p7) }];
  if (address.match(SIX_TO_FOUR)) return [{ form: '6to4', embedded: ipv4FromParts(p1, p2) }];
  if (address.match(TEREDO)) {
    return [
      // RFC 4380: the client address is stored with every bit inverted.
      { form: 'Teredo client', embedded: ipv4FromParts(~p6 & 0xffff, ~p7 & 0xffff) },
      { form: 'Teredo server', embedded: ipv4FromParts(p2, p3) },
    ];
  }
  // ::/128 and ::1 are the unspecified and loopback addresses, not IPv4-compatible ones.
  if (address.match(IPV4_COMPATIBLE) && (p6 !== 0 || p7 > 1)) {
    return [{ form: 'IPv4-compatible', embedded: ipv4FromParts(p6, p7) }];
  }
  return [];
}
