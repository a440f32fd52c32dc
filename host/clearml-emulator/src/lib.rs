//! In-memory emulator of the ClearML REST API.
