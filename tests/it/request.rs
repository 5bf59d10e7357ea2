//! One call for a receiver: `Verifier::verify_request` on the request as received,
//! against the system clock, with only this crate as a dependency (`http` and `chrono`
//! re-exported).

use powens_webhooks::chrono::{Duration, Utc};
use powens_webhooks::http::Request;
use powens_webhooks::{
    FreshnessWindow, HeaderError, KeyRing, Secret, SignedPrefix, Verifier, VerifyError, sign,
};

const PATH: &str = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
const BODY: &[u8] = br#"{"id_webhook_data": 3}"#;

fn verifier() -> Verifier {
    Verifier::new(KeyRing::new(Secret::new("receiver-key").unwrap()))
        .with_freshness(FreshnessWindow::default())
}

/// A request signed `ago` before now over `signed`, carrying `body`.
fn request(signed: &[u8], body: &[u8], ago: Duration) -> Request<Vec<u8>> {
    let date = (Utc::now() - ago)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let secret = Secret::new("receiver-key").unwrap();
    let signature = sign(&secret, &SignedPrefix::new("POST", PATH, &date), signed);
    Request::post(PATH)
        .header("BI-Signature-Date", date)
        .header("BI-Signature", signature.to_base64())
        .body(body.to_vec())
        .unwrap()
}

#[test]
fn verify_request_accepts_a_signed_request_and_refuses_the_rest() {
    let verifier = verifier();
    assert_eq!(
        verifier.verify_request(&request(BODY, BODY, Duration::zero())),
        Ok(0)
    );
    assert!(matches!(
        verifier.verify_request(&request(BODY, b"{}", Duration::zero())),
        Err(VerifyError::SignatureMismatch { .. })
    ));
    assert!(matches!(
        verifier.verify_request(&request(BODY, BODY, Duration::minutes(20))),
        Err(VerifyError::Stale { .. })
    ));
    let bearer_only = Request::post(PATH)
        .header("Authorization", "Bearer user-token")
        .body(BODY.to_vec())
        .unwrap();
    assert_eq!(
        verifier.verify_request(&bearer_only),
        Err(VerifyError::UnsignedRequest)
    );
    let bare = Request::post(PATH).body(BODY.to_vec()).unwrap();
    assert_eq!(
        verifier.verify_request(&bare),
        Err(VerifyError::UnsignedRequest)
    );
    let mut malformed = request(BODY, BODY, Duration::zero());
    malformed
        .headers_mut()
        .insert("BI-Signature", "not base64!".parse().unwrap());
    assert_eq!(
        verifier.verify_request(&malformed),
        Err(VerifyError::MalformedHeaders(
            HeaderError::SignatureNotBase64
        ))
    );
    // The errors say what is wrong without quoting a header.
    assert_eq!(
        VerifyError::UnsignedRequest.to_string(),
        "the request has no BI-Signature and BI-Signature-Date headers"
    );
}
