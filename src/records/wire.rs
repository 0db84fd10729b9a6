//! The JSON form of records and webhook events (docs/records.md).
//!
//! A record is written as schema 1: its facts, times as RFC 3339 UTC with
//! milliseconds, and `setup_ms` and `duration_s` worked out from the times
//! so that they can never disagree with them. Webhook bodies are the same
//! objects with the event's name in front.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::{de, ser, Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use super::error::RecordsError;
use super::record::{CallEvent, CallRecord, Direction, End, Legs, QualityPair};

/// The record schema siphon writes; a change a consumer could misread
/// (a field renamed, removed or given a new meaning) raises it.
pub const SCHEMA: u32 = 1;

/// RFC 3339 in UTC with exactly three decimals: sortable as text.
const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `t` as `2026-12-05T12:05:42.123Z`.
pub fn timestamp(t: SystemTime) -> Result<String, RecordsError> {
    let out_of_range = || RecordsError::Time(format!("{t:?} is out of range"));
    let utc = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => time::Duration::try_from(after)
            .ok()
            .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_add(d)),
        Err(before) => time::Duration::try_from(before.duration())
            .ok()
            .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_sub(d)),
    };
    let utc = utc.ok_or_else(out_of_range)?;
    utc.format(TIMESTAMP)
        .map_err(|e| RecordsError::Time(e.to_string()))
}

/// Any RFC 3339 time, as a `SystemTime`.
pub fn parse_timestamp(text: &str) -> Result<SystemTime, RecordsError> {
    let parsed =
        OffsetDateTime::parse(text, &Rfc3339).map_err(|e| RecordsError::Time(e.to_string()))?;
    let offset = parsed - OffsetDateTime::UNIX_EPOCH;
    let magnitude = offset.unsigned_abs();
    let t = if offset.is_negative() {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    };
    t.ok_or_else(|| RecordsError::Time(format!("{text:?} is out of range")))
}

/// A record as written: every key always present, `null` where unknown.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    schema: u32,
    id: Cow<'a, str>,
    instance: Cow<'a, str>,
    direction: Direction,
    from: Cow<'a, str>,
    to: Cow<'a, str>,
    user: Option<Cow<'a, str>>,
    started_at: String,
    ringing_at: Option<String>,
    answered_at: Option<String>,
    ended_at: String,
    setup_ms: Option<u64>,
    duration_s: f64,
    end: Cow<'a, End>,
    legs: Cow<'a, Legs>,
    quality: Cow<'a, QualityPair>,
    ice_restarts: u32,
    dtmf: u32,
    transfers: u32,
}

fn optional(t: Option<SystemTime>) -> Result<Option<String>, RecordsError> {
    t.map(timestamp).transpose()
}

impl<'a> Wire<'a> {
    fn of(r: &'a CallRecord) -> Result<Self, RecordsError> {
        let setup_ms = r
            .setup()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        // Milliseconds, as the times are: 62.5, not 62.500123.
        let duration_s = r.duration().as_millis() as f64 / 1000.0;
        Ok(Wire {
            schema: SCHEMA,
            id: Cow::Borrowed(&r.id),
            instance: Cow::Borrowed(&r.instance),
            direction: r.direction,
            from: Cow::Borrowed(&r.from),
            to: Cow::Borrowed(&r.to),
            user: r.user.as_deref().map(Cow::Borrowed),
            started_at: timestamp(r.started_at)?,
            ringing_at: optional(r.ringing_at)?,
            answered_at: optional(r.answered_at)?,
            ended_at: timestamp(r.ended_at)?,
            setup_ms,
            duration_s,
            end: Cow::Borrowed(&r.end),
            legs: Cow::Borrowed(&r.legs),
            quality: Cow::Borrowed(&r.quality),
            ice_restarts: r.ice_restarts,
            dtmf: r.dtmf,
            transfers: r.transfers,
        })
    }

    /// The record back; `setup_ms` and `duration_s` follow from the times.
    fn into_record(self) -> Result<CallRecord, RecordsError> {
        let parse_optional = |t: Option<String>| t.as_deref().map(parse_timestamp).transpose();
        Ok(CallRecord {
            id: self.id.into_owned(),
            instance: self.instance.into_owned(),
            direction: self.direction,
            from: self.from.into_owned(),
            to: self.to.into_owned(),
            user: self.user.map(Cow::into_owned),
            started_at: parse_timestamp(&self.started_at)?,
            ringing_at: parse_optional(self.ringing_at)?,
            answered_at: parse_optional(self.answered_at)?,
            ended_at: parse_timestamp(&self.ended_at)?,
            end: self.end.into_owned(),
            legs: self.legs.into_owned(),
            quality: self.quality.into_owned(),
            ice_restarts: self.ice_restarts,
            dtmf: self.dtmf,
            transfers: self.transfers,
        })
    }
}

impl Serialize for CallRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire::of(self)
            .map_err(ser::Error::custom)?
            .serialize(serializer)
    }
}

/// Reads schema 1 only: a higher schema may mean what this code would misread.
impl<'de> Deserialize<'de> for CallRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        if wire.schema != SCHEMA {
            let found = format!("record schema {}, this reader knows {SCHEMA}", wire.schema);
            return Err(de::Error::custom(found));
        }
        wire.into_record().map_err(de::Error::custom)
    }
}

/// A webhook body: `{"event": <name>, ...the fields of body}`.
#[derive(Serialize)]
struct Envelope<'a, T> {
    event: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// `call.started` and `call.answered`: who calls whom, and when.
#[derive(Serialize)]
struct Progress<'a> {
    schema: u32,
    id: &'a str,
    instance: &'a str,
    direction: Direction,
    from: &'a str,
    to: &'a str,
    user: Option<&'a str>,
    at: String,
}

/// The webhook body of a finished call: the record with `"event":"call.ended"` first.
pub fn ended_body(record: &CallRecord) -> Result<String, RecordsError> {
    let envelope = Envelope {
        event: "call.ended",
        body: record,
    };
    Ok(serde_json::to_string(&envelope)?)
}

/// The webhook body of `event` on the call `record` describes so far, at `at`.
pub fn event_body(
    event: CallEvent,
    record: &CallRecord,
    at: SystemTime,
) -> Result<String, RecordsError> {
    let progress = Progress {
        schema: SCHEMA,
        id: &record.id,
        instance: &record.instance,
        direction: record.direction,
        from: &record.from,
        to: &record.to,
        user: record.user.as_deref(),
        at: timestamp(at)?,
    };
    let envelope = Envelope {
        event: event.name(),
        body: &progress,
    };
    Ok(serde_json::to_string(&envelope)?)
}

#[cfg(test)]
mod tests;
