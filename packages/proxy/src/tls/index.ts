// TLS in the proxy: the secrets (SDS and agent-resolved files), TLS contexts (checked and
// resolved per connection), the downstream (terminating) and upstream (originating) transport
// sockets, and peer certificate verification.
export * from './data-source.js';
export * from './secret-manager.js';
export * from './pem.js';
export * from './peer-verifier.js';
export * from './tls-context.js';
export * from './downstream.js';
export * from './upstream.js';
export * from './certs-view.js';
