//! The relay's settings from the harness's command line: `--relay-set KEY=VALUE` for
//! every relay it starts, `--compare KEY=V1,V2[,…]` for one relay per value.

use std::str::FromStr;

use powens_webhooks::relay::Overrides;

/// Keys the harness sets itself for every relay it starts.
const OWNED: [&str; 4] = ["listen", "amqp_url", "exchange_prefix", "data_dir"];

/// A configuration key of the relay (as in its file) and a value for it, written as its
/// flag takes it.
#[derive(Clone, Debug)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    /// The relay's environment variable for the key: `POWENS_RELAY_MAX_IN_FLIGHT`.
    pub fn env(&self) -> String {
        format!("POWENS_RELAY_{}", self.key.to_ascii_uppercase())
    }

    /// `self` on top of `overrides`.
    pub fn apply(&self, overrides: Overrides) -> Overrides {
        overrides.with(&self.key, &self.value)
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

impl FromStr for Setting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected KEY=VALUE"))?;
        let key = known_key(key)?;
        Ok(Self {
            key,
            value: value.to_owned(),
        })
    }
}

/// `--compare KEY=V1,V2[,…]`: one relay per value, measured in alternating runs.
#[derive(Clone, Debug)]
pub struct Compare {
    pub key: String,
    pub values: Vec<String>,
}

impl FromStr for Compare {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, values) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected KEY=V1,V2"))?;
        let key = known_key(key)?;
        let values: Vec<String> = values.split(',').map(str::to_owned).collect();
        if values.len() < 2 || values.iter().any(String::is_empty) {
            return Err(format!("{text:?}: expected two values or more, KEY=V1,V2"));
        }
        Ok(Self { key, values })
    }
}

/// `key` if the relay has a configuration key of that name that the harness does not
/// set itself. (A mistyped key passed as an environment variable would be ignored by
/// the relay process, silently: so every key is checked here, for both modes.)
fn known_key(key: &str) -> Result<String, String> {
    let key = key.trim().to_ascii_lowercase().replace('-', "_");
    if OWNED.contains(&key.as_str()) {
        return Err(format!(
            "{key}: set by the harness for each relay it starts (its own for each)"
        ));
    }
    // `Overrides::with` panics on a key it does not know, the crate's list of keys
    // being the only one: asked quietly, its answer is the relay's own.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let known = std::panic::catch_unwind(|| Overrides::new().with(&key, "")).is_ok();
    std::panic::set_hook(hook);
    match known {
        true => Ok(key),
        false => Err(format!(
            "{key}: the relay has no configuration key of that name"
        )),
    }
}

/// One relay configuration of the invocation.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Its name in the report: `relay`, or `relay KEY=VALUE` when comparing.
    pub name: String,
    /// The compared key's value, when comparing.
    pub value: Option<String>,
    /// What it sets, `--relay-set` first.
    pub settings: Vec<Setting>,
}

/// The relays to measure: one with `set`, or one per value of `compare`.
pub fn variants(set: &[Setting], compare: Option<&Compare>) -> Result<Vec<Variant>, String> {
    let Some(compare) = compare else {
        return Ok(vec![Variant {
            name: "relay".to_owned(),
            value: None,
            settings: set.to_vec(),
        }]);
    };
    if set.iter().any(|s| s.key == compare.key) {
        return Err(format!(
            "{} is both compared and set with --relay-set",
            compare.key
        ));
    }
    let mut seen = std::collections::HashSet::new();
    compare
        .values
        .iter()
        .map(|value| {
            if !seen.insert(value) {
                return Err(format!("--compare: {value} twice"));
            }
            let setting = Setting {
                key: compare.key.clone(),
                value: value.clone(),
            };
            Ok(Variant {
                name: format!("relay {setting}"),
                value: Some(value.clone()),
                settings: set.iter().cloned().chain([setting]).collect(),
            })
        })
        .collect()
}
