//! What a websocket client sends the dispatcher: its credentials (header or query) and
//! its text frames.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::dispatch_input(data));
