// The broker package's public surface (package.json "exports": "./broker"). Everything else
// under broker/ is internal: import from here. The CLI and the load generator start the broker
// through startBroker; tools and tests drive the core through createBrokerCore on a store.

export * from "./server/index.js";
export * from "./core/index.js";
export * from "./store/index.js";
