// The original destination of a redirected connection, as Envoy's original_dst listener filter
// reads it on Linux: getsockopt(SOL_IP, SO_ORIGINAL_DST) (SOL_IPV6, IP6T_SO_ORIGINAL_DST for IPv6)
// returns the address the client dialled before iptables REDIRECT sent it to 15001/15006. Node
// has no getsockopt, so the call goes through the `koffi` FFI package (prebuilt binaries, no
// compiler). Where that is impossible (not Linux, koffi missing, no file descriptor) or the
// connection was not redirected (conntrack has no NAT entry), the accepting address is the
// original destination, which is exactly right for explicit capture.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { normalizeIp } from './ip.js';
import { originalDestination as localAddress, type OriginalDestinationFn } from './original-dst.js';

const SOL_IP = 0;
const SOL_IPV6 = 41;
/** SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv4.h, netfilter_ipv6/ip6_tables.h). */
const SO_ORIGINAL_DST = 80;

type GetSockOpt = (fd: number, level: number, name: number, buf: Buffer, len: number[]) => number;

interface Koffi {
  load(path: string): { func(signature: string): GetSockOpt };
}

let loaded: { getsockopt?: GetSockOpt; reason?: string } | undefined;

function load(): { getsockopt?: GetSockOpt; reason?: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { reason: `not Linux (${process.platform})` });
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const libc = koffi.load('libc.so.6');
    const getsockopt = libc.func(
      'int getsockopt(int fd, int level, int name, _Out_ uint8_t *buf, _Inout_ uint32_t *len)',
    );
    loaded = { getsockopt };
  } catch (e) {
    loaded = { reason: `cannot call getsockopt through koffi: ${(e as Error).message}` };
  }
  return loaded;
}

/** Why SO_ORIGINAL_DST cannot be read here, or undefined when it can. */
export function originalDstUnavailable(): string | undefined {
  return load().reason;
}

function fdOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function ipv6Text(b: Buffer): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16));
  return normalizeIp(parts.join(':'));
}

/** Reads SO_ORIGINAL_DST, falling back to the accepting address. */
export const socketOriginalDestination: OriginalDestinationFn = (socket) => {
  const { getsockopt } = load();
  const fd = getsockopt ? fdOf(socket) : undefined;
  if (getsockopt && fd !== undefined) {
    const local = socket.localAddress ?? '';
    const v4 = !local.includes(':') || normalizeIp(local) !== local;
    if (v4) {
      const buf = Buffer.alloc(16);
      if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, buf, [16]) === 0)
        return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port: buf.readUInt16BE(2) };
    } else {
      const buf = Buffer.alloc(28);
      if (getsockopt(fd, SOL_IPV6, SO_ORIGINAL_DST, buf, [28]) === 0)
        return { address: ipv6Text(buf.subarray(8, 24)), port: buf.readUInt16BE(2) };
    }
  }
  return localAddress(socket);
};
