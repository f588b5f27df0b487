//! The files role: one dispatch over the engines, with a fallback to libuv for what an engine does not carry.
