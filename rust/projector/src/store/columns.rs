//! A batch's rows as columns (one array per column), the shape the `unnest()` upserts take.

use uuid::Uuid;

use super::Delivered;
use crate::projection::{self, Lesson, Progress};

pub(super) struct ProgressColumns {
    pub(super) campus: Vec<Uuid>,
    pub(super) enrolment: Vec<Uuid>,
    pub(super) course: Vec<Uuid>,
    pub(super) user: Vec<Uuid>,
    pub(super) events: Vec<i64>,
    pub(super) started: Vec<i32>,
    pub(super) completed: Vec<i32>,
    pub(super) watched_ms: Vec<i64>,
    pub(super) quiz_attempts: Vec<i32>,
    pub(super) last_lesson: Vec<Option<Uuid>>,
    pub(super) last_activity: Vec<Option<i64>>,
    pub(super) completed_at: Vec<Option<i64>>,
}

impl ProgressColumns {
    pub(super) fn new(rows: &[(&(Uuid, Uuid), &Progress)]) -> Self {
        Self {
            campus: rows.iter().map(|(k, _)| k.0).collect(),
            enrolment: rows.iter().map(|(k, _)| k.1).collect(),
            course: rows.iter().map(|(_, p)| p.course_id).collect(),
            user: rows.iter().map(|(_, p)| p.user_id).collect(),
            events: rows.iter().map(|(_, p)| p.events).collect(),
            started: rows.iter().map(|(_, p)| p.lessons_started).collect(),
            completed: rows.iter().map(|(_, p)| p.lessons_completed).collect(),
            watched_ms: rows.iter().map(|(_, p)| p.watched_ms).collect(),
            quiz_attempts: rows.iter().map(|(_, p)| p.quiz_attempts).collect(),
            last_lesson: rows.iter().map(|(_, p)| p.last_lesson_id).collect(),
            last_activity: rows.iter().map(|(_, p)| p.last_activity_at).collect(),
            completed_at: rows.iter().map(|(_, p)| p.completed_at).collect(),
        }
    }
}

pub(super) struct LessonColumns {
    pub(super) campus: Vec<Uuid>,
    pub(super) enrolment: Vec<Uuid>,
    pub(super) lesson: Vec<Uuid>,
    pub(super) started: Vec<Option<i64>>,
    pub(super) completed: Vec<Option<i64>>,
    pub(super) watched: Vec<String>,
    pub(super) watched_ms: Vec<i64>,
}

impl LessonColumns {
    pub(super) fn new(rows: &[(&(Uuid, Uuid, Uuid), &Lesson)]) -> Self {
        Self {
            campus: rows.iter().map(|(k, _)| k.0).collect(),
            enrolment: rows.iter().map(|(k, _)| k.1).collect(),
            lesson: rows.iter().map(|(k, _)| k.2).collect(),
            started: rows.iter().map(|(_, l)| l.started_at).collect(),
            completed: rows.iter().map(|(_, l)| l.completed_at).collect(),
            watched: rows.iter().map(|(_, l)| serde_json::to_string(&l.watched).unwrap_or_default()).collect(),
            watched_ms: rows.iter().map(|(_, l)| l.watched_ms).collect(),
        }
    }
}

pub(super) struct GradeColumns {
    pub(super) campus: Vec<Uuid>,
    pub(super) enrolment: Vec<Uuid>,
    pub(super) quiz: Vec<Uuid>,
    pub(super) course: Vec<Uuid>,
    pub(super) user: Vec<Uuid>,
    pub(super) attempts: Vec<i32>,
    pub(super) best: Vec<f64>,
    pub(super) max: Vec<f64>,
    pub(super) at: Vec<i64>,
}

impl GradeColumns {
    pub(super) fn new(rows: &[(projection::GradeKey, projection::Grade)]) -> Self {
        Self {
            campus: rows.iter().map(|(k, _)| k.0).collect(),
            enrolment: rows.iter().map(|(k, _)| k.1).collect(),
            quiz: rows.iter().map(|(k, _)| k.2).collect(),
            course: rows.iter().map(|(_, g)| g.course_id).collect(),
            user: rows.iter().map(|(_, g)| g.user_id).collect(),
            attempts: rows.iter().map(|(_, g)| g.attempts).collect(),
            best: rows.iter().map(|(_, g)| g.best_score).collect(),
            max: rows.iter().map(|(_, g)| g.max_score).collect(),
            at: rows.iter().map(|(_, g)| g.last_graded_at).collect(),
        }
    }
}

pub(super) struct FactColumns<'a> {
    pub(super) campus: Vec<Uuid>,
    pub(super) id: Vec<Uuid>,
    pub(super) user: Vec<Uuid>,
    pub(super) course: Vec<Uuid>,
    pub(super) verb: Vec<&'a str>,
    pub(super) activity: Vec<&'a str>,
    pub(super) timestamp: Vec<i64>,
    pub(super) stored: Vec<i64>,
    pub(super) event: Vec<&'a [u8]>,
}

impl<'a> FactColumns<'a> {
    pub(super) fn new(fresh: &[&'a Delivered], facts: &'a [projection::Facts]) -> Self {
        Self {
            campus: fresh.iter().map(|d| d.event.campus).collect(),
            id: fresh.iter().map(|d| d.event.id).collect(),
            user: facts.iter().map(|f| f.user_id).collect(),
            course: facts.iter().map(|f| f.course_id).collect(),
            verb: facts.iter().map(|f| f.verb.as_str()).collect(),
            activity: facts.iter().map(|f| f.activity.as_str()).collect(),
            timestamp: facts.iter().map(|f| f.timestamp_us).collect(),
            stored: facts.iter().map(|f| f.stored_us).collect(),
            event: fresh.iter().map(|d| d.data.as_ref()).collect(),
        }
    }
}
