//! Conversion of single config values between TOML and their Rust types.
//!
//! Each type converts itself and explains a mismatch in words, so that the
//! reader can collect every bad value instead of stopping at the first one as
//! serde would.

use std::net::{IpAddr, SocketAddr};

use toml::Value;

use super::types::{InboundOthers, LogFormat, RelayIo};

/// A config value type: read from TOML with a readable error, written back for the schema.
pub(super) trait Field: Sized {
    /// Converts `value`, or says what was expected instead.
    fn from_toml(value: &Value) -> Result<Self, FieldError>;
    /// The TOML form of `self`; `from_toml(&x.to_toml())` gives `x` back.
    fn to_toml(&self) -> Value;
}

/// Why a TOML value is not what its key takes; the reader puts it after the
/// key's name ("sip.udp: expected ...").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum FieldError {
    /// The value has the wrong type, form or range.
    #[error("expected {expected}, got {}", describe(.got))]
    Mismatch {
        /// What the key takes, in words: "an integer from 0 to 65535".
        expected: String,
        /// What the file has.
        got: Value,
    },
    /// The value is not one of the key's names.
    #[error("expected {}, got {}", one_of(.names), describe(.got))]
    NotAChoice {
        /// The names the key takes, in the order the message lists them.
        names: Vec<&'static str>,
        /// What the file has.
        got: Value,
    },
}

/// "expected X, got <value>".
fn mismatch(expected: impl Into<String>, got: &Value) -> FieldError {
    FieldError::Mismatch {
        expected: expected.into(),
        got: got.clone(),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Integer(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

/// `"a" or "b"`, `"a", "b" or "c"`: names quoted, the last joined with "or".
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn as_str<'a>(value: &'a Value, expected: &str) -> Result<&'a str, FieldError> {
    value.as_str().ok_or_else(|| mismatch(expected, value))
}

impl Field for String {
    fn from_toml(value: &Value) -> Result<Self, FieldError> {
        as_str(value, "a string").map(str::to_owned)
    }
    fn to_toml(&self) -> Value {
        Value::String(self.clone())
    }
}

/// Strings where "" means "not set".
impl Field for Option<String> {
    fn from_toml(value: &Value) -> Result<Self, FieldError> {
        let s = as_str(value, "a string")?;
        Ok((!s.is_empty()).then(|| s.to_owned()))
    }
    fn to_toml(&self) -> Value {
        Value::String(self.clone().unwrap_or_default())
    }
}

impl Field for bool {
    fn from_toml(value: &Value) -> Result<Self, FieldError> {
        value
            .as_bool()
            .ok_or_else(|| mismatch("true or false", value))
    }
    fn to_toml(&self) -> Value {
        Value::Boolean(*self)
    }
}

macro_rules! integer_field {
    ($($ty:ty),*) => {$(
        impl Field for $ty {
            fn from_toml(value: &Value) -> Result<Self, FieldError> {
                let expected = || format!("an integer from 0 to {}", <$ty>::MAX);
                let n = value.as_integer().ok_or_else(|| mismatch(expected(), value))?;
                <$ty>::try_from(n).map_err(|_| mismatch(expected(), value))
            }
            fn to_toml(&self) -> Value {
                // TOML integers are i64; config values never come near i64::MAX.
                Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}

integer_field!(u16, u32, u64);

/// Types written as a string in TOML, each with an example for the error message;
/// `Option<T>` takes "" as `None`.
macro_rules! text_field {
    ($($ty:ty => $expected:literal),*) => {$(
        impl Field for $ty {
            fn from_toml(value: &Value) -> Result<Self, FieldError> {
                let s = as_str(value, $expected)?;
                s.trim().parse().map_err(|_| mismatch($expected, value))
            }
            fn to_toml(&self) -> Value {
                Value::String(self.to_string())
            }
        }

        impl Field for Option<$ty> {
            fn from_toml(value: &Value) -> Result<Self, FieldError> {
                match as_str(value, concat!($expected, " or \"\""))? {
                    "" => Ok(None),
                    _ => <$ty>::from_toml(value).map(Some),
                }
            }
            fn to_toml(&self) -> Value {
                self.as_ref().map_or_else(|| Value::String(String::new()), Field::to_toml)
            }
        }
    )*};
}

text_field!(
    SocketAddr => "an IP:port address such as \"127.0.0.1:5060\" or \"[::1]:5060\"",
    IpAddr => "an IP address such as \"127.0.0.1\" or \"::1\""
);

impl Field for Vec<String> {
    fn from_toml(value: &Value) -> Result<Self, FieldError> {
        const EXPECTED: &str = "an array of strings";
        let items = value.as_array().ok_or_else(|| mismatch(EXPECTED, value))?;
        items
            .iter()
            .map(|item| as_str(item, "only strings in the array").map(str::to_owned))
            .collect()
    }
    fn to_toml(&self) -> Value {
        Value::Array(self.iter().cloned().map(Value::String).collect())
    }
}

/// A config value that is one of a few names, compared without case.
pub(super) trait Choice: Copy + PartialEq + 'static {
    /// Each variant with its name, in the order an error lists them.
    const NAMES: &'static [(&'static str, Self)];

    /// The config spelling of `self`.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

impl<T: Choice> Field for T {
    fn from_toml(value: &Value) -> Result<Self, FieldError> {
        let not_a_choice = || FieldError::NotAChoice {
            names: T::NAMES.iter().map(|(n, _)| *n).collect(),
            got: value.clone(),
        };
        let name = value
            .as_str()
            .ok_or_else(not_a_choice)?
            .to_ascii_lowercase();
        T::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(not_a_choice)
    }
    fn to_toml(&self) -> Value {
        Value::String(self.name().to_owned())
    }
}

impl Choice for LogFormat {
    const NAMES: &'static [(&'static str, Self)] = &[("text", Self::Text), ("json", Self::Json)];
}

impl Choice for RelayIo {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("auto", Self::Auto),
        ("io_uring", Self::IoUring),
        ("epoll", Self::Epoll),
    ];
}

impl Choice for InboundOthers {
    const NAMES: &'static [(&'static str, Self)] =
        &[("refuse", Self::Refuse), ("challenge", Self::Challenge)];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Field + PartialEq + std::fmt::Debug>(x: T) {
        assert_eq!(T::from_toml(&x.to_toml()), Ok(x));
    }

    #[test]
    fn values_round_trip() {
        round_trip(String::from("a"));
        round_trip(Some(String::from("sip:pbx")));
        round_trip(None::<String>);
        round_trip(true);
        round_trip(65535u16);
        round_trip(7u32);
        round_trip(60u64);
        round_trip("[::1]:5060".parse::<SocketAddr>().unwrap());
        round_trip(None::<SocketAddr>);
        round_trip(Some("10.0.0.1".parse::<IpAddr>().unwrap()));
        round_trip(vec![String::from("opus")]);
        round_trip(LogFormat::Json);
        round_trip(InboundOthers::Refuse);
        round_trip(InboundOthers::Challenge);
    }

    #[test]
    fn mismatches_say_what_was_expected() {
        let err = u16::from_toml(&Value::Integer(70000))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "expected an integer from 0 to 65535, got 70000");
        let err = SocketAddr::from_toml(&Value::String("localhost".into())).unwrap_err();
        let err = err.to_string();
        assert!(err.starts_with("expected an IP:port address"), "{err}");
        let err = bool::from_toml(&Value::String("yes".into())).unwrap_err();
        assert_eq!(err.to_string(), "expected true or false, got \"yes\"");
        let err = Vec::<String>::from_toml(&Value::Array(vec![Value::Integer(1)])).unwrap_err();
        assert_eq!(err.to_string(), "expected only strings in the array, got 1");
    }

    #[test]
    fn choices_list_their_names() {
        let err = LogFormat::from_toml(&Value::String("xml".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected \"text\" or \"json\", got \"xml\""
        );
        let err = InboundOthers::from_toml(&Value::Integer(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected \"refuse\" or \"challenge\", got 1"
        );
        assert_eq!(
            one_of(&["off", "offer", "require"]),
            r#""off", "offer" or "require""#
        );
        assert_eq!(one_of(&["only"]), r#""only""#);
        assert_eq!(LogFormat::Json.name(), "json");
    }
}
