//! ClearML REST API: wire types and an async client.
