//! Decoding TeaL messages from arbitrary bytes; whatever decodes re-encodes to JSON that
//! decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use powens_webhooks::{
    CallbackMessage, OpenIdCibaCallbackMessage, PowensWebhookMessage, TealMessage,
};

fn round_trip<M: TealMessage + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(message) = M::from_json(data) {
        let wire = message.to_json();
        assert!(wire.is_ascii());
        assert_eq!(M::from_json(&wire).unwrap(), message);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<PowensWebhookMessage>(data);
    round_trip::<CallbackMessage>(data);
    round_trip::<OpenIdCibaCallbackMessage>(data);
});
