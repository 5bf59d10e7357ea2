//! Diagnosing refused signatures at a bounded rate: a diagnosis costs a few HMACs over
//! the body, so a flood of bad requests must not multiply the relay's work. A token
//! bucket (`diagnosis_rate` a second, as many in a burst) decides; the diagnosis runs
//! on a blocking thread; `powens_relay_signature_diagnoses_total{cause}` counts those
//! made.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::reply::SignatureDiagnosis;
use crate::axum::Evidence;
use crate::diagnosis::Cause;

/// The diagnosis' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiagnosisSettings {
    /// Diagnoses a second, and in a burst (`diagnosis_rate`); 0: none.
    pub(crate) rate: u32,
    /// Path prefixes to try besides the usual ones (the path of `public_url`).
    pub(crate) hints: Vec<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

/// Tokens left and when they were counted.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Diagnoses refused signatures, at most `rate` a second.
#[derive(Debug)]
pub(crate) struct Diagnoser {
    rate: u32,
    hints: Arc<[String]>,
    bucket: Mutex<Bucket>,
    diagnoses: Family<CauseLabels, Counter>,
}

impl Diagnoser {
    /// The diagnoser of `settings`, its counter registered in `registry`.
    pub(crate) fn new(settings: &DiagnosisSettings, registry: &mut Registry) -> Self {
        let diagnoses = Family::<CauseLabels, Counter>::default();
        registry.sub_registry_with_prefix("powens_relay").register(
            "signature_diagnoses",
            "Refused signatures diagnosed, by the cause found",
            diagnoses.clone(),
        );
        // Every cause shown from the start, at 0.
        for cause in Cause::ALL {
            let _ = diagnoses.get_or_create(&CauseLabels {
                cause: cause.label(),
            });
        }
        Self {
            rate: settings.rate,
            hints: settings.hints.clone().into(),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(settings.rate),
                at: Instant::now(),
            }),
            diagnoses,
        }
    }

    /// Takes a token if one is left.
    fn allowed(&self) -> bool {
        if self.rate == 0 {
            return false;
        }
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let rate = f64::from(self.rate);
        let refilled = bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.at = now;
        bucket.tokens = refilled.min(rate);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The diagnosis of `evidence`, or why there is none (the rate is spent).
    pub(crate) async fn diagnose(&self, evidence: Box<Evidence>) -> Option<SignatureDiagnosis> {
        if !self.allowed() {
            return Some(SignatureDiagnosis::Skipped(self.rate));
        }
        let hints = self.hints.clone();
        let found = tokio::task::spawn_blocking(move || evidence.diagnose(&hints, Utc::now()))
            .await
            .ok()
            .flatten()?;
        self.diagnoses
            .get_or_create(&CauseLabels {
                cause: found.cause().label(),
            })
            .inc();
        Some(SignatureDiagnosis::Found(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_one_second_and_refills() {
        let mut registry = Registry::default();
        let settings = DiagnosisSettings {
            rate: 3,
            hints: Vec::new(),
        };
        let diagnoser = Diagnoser::new(&settings, &mut registry);
        let taken = (0..10).filter(|_| diagnoser.allowed()).count();
        assert_eq!(taken, 3);
        // A third of a second later: one more.
        diagnoser
            .bucket
            .lock()
            .unwrap()
            .at
            .clone_from(&(Instant::now() - std::time::Duration::from_millis(340)));
        assert!(diagnoser.allowed());
        assert!(!diagnoser.allowed());
        let off = Diagnoser::new(
            &DiagnosisSettings {
                rate: 0,
                hints: Vec::new(),
            },
            &mut registry,
        );
        assert!(!off.allowed());
    }
}
