/** Public entry: re-exports the client library and nothing else. */
export * from "./client/index";
