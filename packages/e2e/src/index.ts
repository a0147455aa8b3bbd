// End-to-end tests of the mesh: a real control plane driving real proxies over real sockets.
// The package has tests only; its source is shared helpers for them.
export {};
