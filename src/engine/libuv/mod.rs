//! The libuv engine: libuv's own streams (`uv_read_start`, `uv_write`), listeners, UDP and fs requests. It runs
//! on every OS, and carries whatever another engine does not.

pub(crate) mod fs;
pub(crate) mod listener;
pub(crate) mod stream;
pub(crate) mod udp;
