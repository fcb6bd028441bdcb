//! Events as delivered: decoding and checking the envelope (`lmsd/events/envelope.py` is the
//! Python side), and encoding the events the projector itself records (course completions).

use lmsd_proto::v1::{self, event::Body};
use prost::Message;
use uuid::Uuid;

/// A message that is not a valid lmsd event: it goes to the dead-letter stream at once.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Undecodable {
    #[error("not a protobuf lmsd.contracts.v1.Event: {0}")]
    Protobuf(String),
    #[error("event without id or body")]
    Incomplete,
    #[error("event ids are not UUIDs")]
    Ids,
}

/// An event whose envelope ids are checked and parsed.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub campus: Uuid,
    pub enrolment: Uuid,
    pub envelope: v1::Event,
}

impl Event {
    pub fn body(&self) -> &Body {
        self.envelope.body.as_ref().expect("checked by decode")
    }

    /// The body's field name, as in subjects (`lesson_completed`).
    pub fn kind(&self) -> &'static str {
        self.body().name()
    }
}

/// Decodes and checks one message, like `lmsd.events.envelope.decode`.
pub fn decode(data: &[u8]) -> Result<Event, Undecodable> {
    let envelope = v1::Event::decode(data).map_err(|e| Undecodable::Protobuf(e.to_string()))?;
    if envelope.id.is_empty() || envelope.body.is_none() {
        return Err(Undecodable::Incomplete);
    }
    let (Ok(id), Ok(campus), Ok(enrolment)) = (
        Uuid::parse_str(&envelope.id),
        Uuid::parse_str(&envelope.campus_id),
        Uuid::parse_str(&envelope.aggregate_id),
    ) else {
        return Err(Undecodable::Ids);
    };
    Ok(Event { id, campus, enrolment, envelope })
}

/// `lmsd.<campus>.<aggregate>.<id>.<event>` (docs/events.md).
pub fn subject(campus: Uuid, aggregate: &str, aggregate_id: Uuid, body: &Body) -> String {
    format!("lmsd.{campus}.{aggregate}.{aggregate_id}.{}", body.name())
}

/// A field that must hold a UUID and does not: the event cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} {value:?} is not a UUID")]
pub struct BadId {
    pub field: &'static str,
    pub value: String,
}

pub fn parse_id(field: &'static str, value: &str) -> Result<Uuid, BadId> {
    Uuid::parse_str(value).map_err(|_| BadId { field, value: value.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(id: &str) -> v1::Event {
        v1::Event {
            id: id.to_owned(),
            campus_id: Uuid::new_v4().to_string(),
            aggregate: "enrolment".into(),
            aggregate_id: Uuid::new_v4().to_string(),
            version: 1,
            occurred_at_us: 5,
            recorded_at_us: 6,
            actor_id: String::new(),
            body: Some(Body::LessonStarted(v1::LessonStarted {
                course_id: "c".into(),
                lesson_id: "l".into(),
            })),
        }
    }

    #[test]
    fn decodes_checks_and_refuses() {
        let good = envelope(&Uuid::new_v4().to_string());
        let event = decode(&good.encode_to_vec()).unwrap();
        assert_eq!(event.id.to_string(), good.id);
        assert_eq!(event.kind(), "lesson_started");

        let err = decode(b"\xff\x00 not protobuf").unwrap_err();
        assert!(err.to_string().starts_with("not a protobuf lmsd.contracts.v1.Event: "), "{err}");
        assert_eq!(decode(&envelope("").encode_to_vec()).unwrap_err(), Undecodable::Incomplete);
        let mut bodiless = envelope(&Uuid::new_v4().to_string());
        bodiless.body = None;
        assert_eq!(decode(&bodiless.encode_to_vec()).unwrap_err(), Undecodable::Incomplete);
        assert_eq!(decode(&envelope("x").encode_to_vec()).unwrap_err(), Undecodable::Ids);
        // the forms Python's uuid.UUID takes are taken here too
        let simple = Uuid::new_v4().simple().to_string().to_uppercase();
        assert!(decode(&envelope(&simple).encode_to_vec()).is_ok());
    }

    #[test]
    fn ids_and_subjects() {
        let err = parse_id("course_id", "nope").unwrap_err();
        assert_eq!(err.to_string(), "course_id \"nope\" is not a UUID");
        let campus = Uuid::nil();
        let body = Body::CourseCompleted(v1::CourseCompleted::default());
        assert_eq!(
            subject(campus, "enrolment", campus, &body),
            format!("lmsd.{campus}.enrolment.{campus}.course_completed")
        );
    }
}
