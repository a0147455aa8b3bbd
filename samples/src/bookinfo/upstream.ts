// Where bookinfo's services find each other: `http://<name><domain>:<port>`, with the host and
// port overridable as in Istio's bookinfo (DETAILS_HOSTNAME, DETAILS_SERVICE_PORT, ...,
// SERVICES_DOMAIN appended to every name).

/** The base URL of a bookinfo service, e.g. `http://reviews:9080`. */
export function serviceBaseUrl(
  service: 'details' | 'reviews' | 'ratings',
  env: NodeJS.ProcessEnv = process.env,
): string {
  const upper = service.toUpperCase();
  const host = env[`${upper}_HOSTNAME`]?.trim() || service;
  const port = env[`${upper}_SERVICE_PORT`]?.trim() || '9080';
  const domain = env['SERVICES_DOMAIN']?.trim();
  return `http://${host}${domain ? `.${domain}` : ''}:${port}`;
}
