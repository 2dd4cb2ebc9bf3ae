//! Durations in recipes: `"90s"`, `"10m"`, `"1h 30m"` (humantime), or an
//! integer number of seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    Secs(u64),
    Human(String),
}

fn from_text<E: serde::de::Error>(t: Text) -> Result<Duration, E> {
    match t {
        Text::Secs(s) => Ok(Duration::from_secs(s)),
        Text::Human(h) => humantime::parse_duration(&h).map_err(|e| {
            E::custom(format!(
                "`{h}` is not a duration ({e}); write e.g. \"90s\", \"10m\" or \"1h 30m\""
            ))
        }),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_text(Text::deserialize(d)?)
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<Text>::deserialize(d)?.map(from_text).transpose()
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}
