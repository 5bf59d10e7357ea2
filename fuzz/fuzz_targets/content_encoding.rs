//! `Content-Encoding` parsing and bounded gzip decompression.
//!
//! Input: a limit selector byte, a `Content-Encoding` value up to the first newline, then
//! a body. Checks: only gzip, x-gzip and identity are accepted; `gunzip` never returns
//! more than its limit, and what it returns does not depend on the limit once the limit
//! is large enough; the body gzip-compressed decompresses back to itself, and one byte
//! under its length is refused as too large.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::content_encoding(data));
