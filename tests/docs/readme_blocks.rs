//! The README's shell blocks, pasted in order as a newcomer would, with `cargo run`
//! standing for the binaries this test run built: the quick start's webhook reaches a
//! websocket client, the relay's reaches a consumer, the dispatcher's a client.
