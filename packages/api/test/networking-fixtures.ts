// Builders for networking.istio.io test objects: a spec in, one JSON document (valid YAML) out.

function objectOf(kind: string, spec: unknown, namespace = 'default', name = 'test'): string {
  return JSON.stringify({
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata: { name, namespace },
    spec,
  });
}

export const virtualService = (spec: unknown, namespace?: string): string =>
  objectOf('VirtualService', spec, namespace);
export const destinationRule = (spec: unknown, namespace?: string): string =>
  objectOf('DestinationRule', spec, namespace);
export const serviceEntry = (spec: unknown, namespace?: string): string =>
  objectOf('ServiceEntry', spec, namespace);
export const workloadEntry = (spec: unknown): string => objectOf('WorkloadEntry', spec);
export const workloadGroup = (spec: unknown): string => objectOf('WorkloadGroup', spec);
export const sidecar = (spec: unknown): string => objectOf('Sidecar', spec);

/** A single-destination HTTP route to `reviews`. */
export const toReviews = { route: [{ destination: { host: 'reviews' } }] };
