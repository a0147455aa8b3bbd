// Just enough protobuf for the simulated proxies: decode a DiscoveryResponse (state of the world)
// or a DeltaDiscoveryResponse (incremental) with its resources left as byte views, peek the few
// fields an Envoy reads to follow the ADS protocol (a cluster's name and EDS service name, the
// RDS route names in a listener's HTTP connection managers), and encode ACK and subscription
// requests of either protocol. The product's strict codec (@trellis/envoy) is used for the first request
// of each stream, which carries the node; everything here exists to keep the simulated proxies
// cheap, because they share the machine's two cores with the control plane they measure.
import { Buffer } from 'node:buffer';
import { TextDecoder } from 'node:util';

const utf8 = new TextDecoder();

/** Reads a varint at `pos`; returns [value, next position]. Values above 2^53 lose precision (never used here). */
function varint(buf, pos) {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    result += (b & 0x7f) * mul;
    if (b < 0x80) return [result, pos];
    mul *= 128;
  }
}

/**
 * Calls `fn(field, wireType, value, buf)` for each top-level field of a message: `value` is a
 * number for varints and fixed-width fields, a Uint8Array view for length-delimited ones.
 */
function fields(buf, fn) {
  let pos = 0;
  while (pos < buf.length) {
    let tag;
    [tag, pos] = varint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    switch (wire) {
      case 0: {
        let v;
        [v, pos] = varint(buf, pos);
        fn(field, wire, v);
        break;
      }
      case 1:
        pos += 8;
        break;
      case 2: {
        let len;
        [len, pos] = varint(buf, pos);
        if (pos + len > buf.length) throw new Error('truncated field');
        fn(field, wire, buf.subarray(pos, pos + len));
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

/**
 * Decodes a DiscoveryResponse: `{ versionInfo, typeUrl, nonce, resources }` where each resource
 * is the Any's value bytes (a view into the message buffer).
 */
export function decodeResponse(buf) {
  const r = { versionInfo: '', typeUrl: '', nonce: '', resources: [], bytes: buf.length };
  fields(buf, (f, w, v) => {
    if (w !== 2) return;
    if (f === 1) r.versionInfo = utf8.decode(v);
    else if (f === 4) r.typeUrl = utf8.decode(v);
    else if (f === 5) r.nonce = utf8.decode(v);
    else if (f === 2)
      fields(v, (af, aw, av) => {
        if (af === 2 && aw === 2) r.resources.push(av);
      });
  });
  return r;
}

/**
 * Decodes a DeltaDiscoveryResponse: `{ versionInfo, typeUrl, nonce, resources, removed }` where
 * versionInfo is system_version_info, each resource is `{ name, version, value }` with value the
 * Any's value bytes (a view into the message buffer), and removed the removed_resources names.
 */
export function decodeDeltaResponse(buf) {
  const r = {
    versionInfo: '',
    typeUrl: '',
    nonce: '',
    resources: [],
    removed: [],
    bytes: buf.length,
  };
  fields(buf, (f, w, v) => {
    if (w !== 2) return;
    if (f === 1) r.versionInfo = utf8.decode(v);
    else if (f === 4) r.typeUrl = utf8.decode(v);
    else if (f === 5) r.nonce = utf8.decode(v);
    else if (f === 6) r.removed.push(utf8.decode(v));
    else if (f === 2) {
      // Resource: version 1, resource 2 (Any: value 2), name 3.
      const res = { name: '', version: '', value: undefined };
      fields(v, (rf, rw, rv) => {
        if (rw !== 2) return;
        if (rf === 3) res.name = utf8.decode(rv);
        else if (rf === 1) res.version = utf8.decode(rv);
        else if (rf === 2)
          fields(rv, (af, aw, av) => {
            if (af === 2 && aw === 2) res.value = av;
          });
      });
      res.value ??= new Uint8Array(0);
      r.resources.push(res);
    }
  });
  return r;
}

const EDS_DISCOVERY_TYPE = 3;

/** A Cluster's EDS subscription name (eds_cluster_config.service_name, else its name), or undefined. */
export function clusterEdsName(value) {
  let name = '';
  let type = 0;
  let serviceName = '';
  fields(value, (f, w, v) => {
    if (f === 1 && w === 2) name = utf8.decode(v);
    else if (f === 2 && w === 0) type = v;
    else if (f === 3 && w === 2)
      fields(v, (ef, ew, ev) => {
        if (ef === 2 && ew === 2) serviceName = utf8.decode(ev);
      });
  });
  return type === EDS_DISCOVERY_TYPE ? serviceName || name : undefined;
}

const HCM_TYPE =
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** Adds the RDS route config names of every HTTP connection manager of a Listener to `out`. */
export function listenerRouteNames(value, out) {
  const chain = (fc) =>
    fields(fc, (f, w, v) => {
      if (f !== 3 || w !== 2) return; // FilterChain.filters
      fields(v, (ff, fw, fv) => {
        if (ff !== 4 || fw !== 2) return; // Filter.typed_config
        let typeUrl = '';
        let body;
        fields(fv, (af, aw, av) => {
          if (af === 1 && aw === 2) typeUrl = utf8.decode(av);
          else if (af === 2 && aw === 2) body = av;
        });
        if (!body || !typeUrl.endsWith(HCM_TYPE)) return;
        fields(body, (hf, hw, hv) => {
          if (hf !== 3 || hw !== 2) return; // HttpConnectionManager.rds
          fields(hv, (rf, rw, rv) => {
            if (rf === 2 && rw === 2) out.add(utf8.decode(rv)); // Rds.route_config_name
          });
        });
      });
    });
  fields(value, (f, w, v) => {
    if ((f === 3 || f === 25) && w === 2) chain(v); // filter_chains, default_filter_chain
  });
}

function tagged(field, bytes) {
  const head = [];
  for (let n of [(field << 3) | 2, bytes.length]) {
    while (n >= 0x80) {
      head.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    head.push(n);
  }
  return Buffer.concat([Buffer.from(head), bytes]);
}

const stringField = (field, s) => tagged(field, Buffer.from(s, 'utf8'));

/**
 * Encoded repeated name entries: `resource_names` of a DiscoveryRequest (field 3, the default),
 * `resource_names_subscribe` (3) or `resource_names_unsubscribe` (4) of a DeltaDiscoveryRequest.
 */
export function encodeNames(names, field = 3) {
  return Buffer.concat(names.map((n) => stringField(field, n)));
}

/**
 * Encodes a DiscoveryRequest without a node (an ACK or a subscription change): version,
 * pre-encoded names (from encodeNames), type URL and nonce.
 */
export function encodeRequest(versionInfo, namesBlock, typeUrl, nonce) {
  const parts = [];
  if (versionInfo) parts.push(stringField(1, versionInfo));
  if (namesBlock && namesBlock.length) parts.push(namesBlock);
  parts.push(stringField(4, typeUrl));
  if (nonce) parts.push(stringField(5, nonce));
  return Buffer.concat(parts);
}

/**
 * Encodes a DeltaDiscoveryRequest without a node: type URL, pre-encoded subscribe and unsubscribe
 * blocks (from encodeNames with field 3 and 4) and response_nonce (set for an ACK).
 */
export function encodeDeltaRequest(typeUrl, subscribeBlock, unsubscribeBlock, nonce) {
  const parts = [stringField(2, typeUrl)];
  if (subscribeBlock && subscribeBlock.length) parts.push(subscribeBlock);
  if (unsubscribeBlock && unsubscribeBlock.length) parts.push(unsubscribeBlock);
  if (nonce) parts.push(stringField(6, nonce));
  return Buffer.concat(parts);
}
