//! The learning projections as pure functions of a batch and the rows it touches: progress
//! (per enrolment and per lesson), the gradebook and the facts of xAPI statements.
//!
//! `lmsd/learning/projections.py` is the reference: `lmsd events replay` rebuilds the tables
//! with it and the integration tests check that the replayed tables equal the ones this
//! projector keeps live. Like it, each result is a function of the set of events seen (a
//! lesson completed twice counts once, watched time is the union of ranges, "last activity" is
//! the greatest (time, lesson id)), so order and grouping of delivery do not matter.

use std::collections::HashMap;

use lmsd_proto::v1::event::Body;
use uuid::Uuid;

use crate::event::{parse_id, BadId, Event};

/// Why an event cannot be applied (it is retried, then dead-lettered).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unappliable {
    #[error("InvalidId: {0}")]
    BadId(#[from] BadId),
    #[error("NotLearning: {0} is not a learning event")]
    NotLearning(&'static str),
}

/// (campus, enrolment)
pub type Key = (Uuid, Uuid);
/// (campus, enrolment, lesson)
pub type LessonKey = (Uuid, Uuid, Uuid);
/// (campus, enrolment, quiz)
pub type GradeKey = (Uuid, Uuid, Uuid);

/// A `progress` row; times are microseconds since the epoch, like the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub course_id: Uuid,
    pub user_id: Uuid,
    pub events: i64,
    pub lessons_started: i32,
    pub lessons_completed: i32,
    pub watched_ms: i64,
    pub quiz_attempts: i32,
    pub last_lesson_id: Option<Uuid>,
    pub last_activity_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// A `lesson_progress` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lesson {
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub watched: Vec<[i64; 2]>,
    pub watched_ms: i64,
}

/// The rows a batch reads and writes: loaded first, then changed by [`apply_progress`].
#[derive(Debug, Default)]
pub struct State {
    pub progress: HashMap<Key, Progress>,
    pub lessons: HashMap<LessonKey, Lesson>,
}

/// What [`apply_progress`] changed: every progress row of the batch's enrolments is written;
/// these lessons are; `completed_before` is each enrolment's completed count before the batch.
#[derive(Debug, Default)]
pub struct Changes {
    pub lessons: Vec<LessonKey>,
    pub completed_before: HashMap<Key, i32>,
}

/// The course of a learning event's body; `None` for other bodies.
pub fn course_id(body: &Body) -> Option<&str> {
    Some(match body {
        Body::LessonStarted(m) => &m.course_id,
        Body::LessonCompleted(m) => &m.course_id,
        Body::VideoWatched(m) => &m.course_id,
        Body::QuizAttemptSubmitted(m) => &m.course_id,
        Body::QuizAttemptGraded(m) => &m.course_id,
        Body::CourseCompleted(m) => &m.course_id,
        Body::EnrolmentCreated(m) => &m.course_id,
        Body::EnrolmentWithdrawn(m) => &m.course_id,
        _ => return None,
    })
}

/// The lesson an event is about: lesson events, and a graded attempt at a lesson's quiz,
/// which completes that lesson whatever the entry point ("" when the quiz is in no lesson).
fn lesson_of(body: &Body) -> Option<&str> {
    match body {
        Body::LessonStarted(m) => Some(&m.lesson_id),
        Body::LessonCompleted(m) => Some(&m.lesson_id),
        Body::VideoWatched(m) => Some(&m.lesson_id),
        Body::QuizAttemptGraded(m) if !m.lesson_id.is_empty() => Some(&m.lesson_id),
        _ => None,
    }
}

/// The learner an event is about: the enrolled user for enrolment events, else the actor.
fn learner_of(event: &Event) -> &str {
    match event.body() {
        Body::EnrolmentCreated(m) => &m.user_id,
        Body::EnrolmentWithdrawn(m) => &m.user_id,
        _ => &event.envelope.actor_id,
    }
}

/// The enrolments of a batch, each once.
pub fn progress_keys(events: &[&Event]) -> Vec<Key> {
    let mut keys: Vec<Key> = events.iter().map(|e| (e.campus, e.enrolment)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The lessons of a batch's lesson events, each once.
pub fn lesson_keys(events: &[&Event]) -> Result<Vec<LessonKey>, Unappliable> {
    let mut keys = Vec::new();
    for event in events {
        if let Some(lesson) = lesson_of(event.body()) {
            keys.push((event.campus, event.enrolment, parse_id("lesson_id", lesson)?));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Sorted, merged ranges with their total length (empty and reversed ranges dropped).
pub fn merge_ranges(ranges: impl IntoIterator<Item = [i64; 2]>) -> (Vec<[i64; 2]>, i64) {
    let mut sorted: Vec<[i64; 2]> = ranges.into_iter().filter(|[s, e]| e > s).collect();
    sorted.sort_unstable();
    let mut merged: Vec<[i64; 2]> = Vec::with_capacity(sorted.len());
    for [start, end] in sorted {
        match merged.last_mut() {
            Some(last) if start <= last[1] => last[1] = last[1].max(end),
            _ => merged.push([start, end]),
        }
    }
    let total = merged.iter().map(|[s, e]| e - s).sum();
    (merged, total)
}

fn earliest(current: Option<i64>, at: i64) -> Option<i64> {
    Some(current.map_or(at, |c| c.min(at)))
}

/// Applies a batch to the loaded rows (`state` holds the stored rows of the batch's keys).
pub fn apply_progress(state: &mut State, events: &[&Event]) -> Result<Changes, Unappliable> {
    let mut changes = Changes {
        completed_before: state.progress.iter().map(|(k, p)| (*k, p.lessons_completed)).collect(),
        ..Changes::default()
    };
    for event in events {
        let key = (event.campus, event.enrolment);
        let body = event.body();
        let creates = matches!(body, Body::EnrolmentCreated(_));
        if creates || !state.progress.contains_key(&key) {
            let learner = learner_of(event);
            let user = if learner.is_empty() { None } else { Some(parse_id("user_id", learner)?) };
            match state.progress.get_mut(&key) {
                Some(p) => {
                    if let Some(user) = user {
                        p.user_id = user;
                    }
                }
                None => {
                    let course = parse_id("course_id", course_id(body).unwrap_or_default())?;
                    state.progress.insert(key, Progress {
                        course_id: course,
                        user_id: user.unwrap_or(Uuid::nil()),
                        events: 0,
                        lessons_started: 0,
                        lessons_completed: 0,
                        watched_ms: 0,
                        quiz_attempts: 0,
                        last_lesson_id: None,
                        last_activity_at: None,
                        completed_at: None,
                    });
                    changes.completed_before.entry(key).or_insert(0);
                }
            }
        }
        let p = state.progress.get_mut(&key).expect("inserted above");
        p.events += 1;
        let at = event.envelope.occurred_at_us;
        if let Some(lesson_text) = lesson_of(body) {
            let lesson_id = parse_id("lesson_id", lesson_text)?;
            let lkey = (key.0, key.1, lesson_id);
            let lesson = state.lessons.entry(lkey).or_default();
            changes.lessons.push(lkey);
            match body {
                Body::LessonStarted(_) => {
                    if lesson.started_at.is_none() {
                        p.lessons_started += 1;
                    }
                    lesson.started_at = earliest(lesson.started_at, at);
                }
                // a graded attempt at the lesson's quiz completes it, like "mark as complete"
                Body::LessonCompleted(_) | Body::QuizAttemptGraded(_) => {
                    if lesson.completed_at.is_none() {
                        p.lessons_completed += 1;
                    }
                    lesson.completed_at = earliest(lesson.completed_at, at);
                }
                Body::VideoWatched(m) => {
                    let old = lesson.watched_ms;
                    let segments = m.segments.iter().map(|s| [i64::from(s.start_ms), i64::from(s.end_ms)]);
                    let (merged, total) = merge_ranges(lesson.watched.iter().copied().chain(segments));
                    lesson.watched = merged;
                    lesson.watched_ms = total;
                    p.watched_ms += total - old;
                }
                _ => unreachable!("the bodies lesson_of names only"),
            }
            // last activity: the greatest (time, lesson id)
            let later = match (p.last_activity_at, p.last_lesson_id) {
                (None, _) => true,
                (Some(last), last_lesson) => at > last || (at == last && Some(lesson_id) > last_lesson),
            };
            if later {
                p.last_activity_at = Some(at);
                p.last_lesson_id = Some(lesson_id);
            }
        } else if matches!(body, Body::QuizAttemptSubmitted(_)) {
            p.quiz_attempts += 1;
        } else if matches!(body, Body::CourseCompleted(_)) {
            p.completed_at = earliest(p.completed_at, at);
        }
    }
    changes.lessons.sort_unstable();
    changes.lessons.dedup();
    Ok(changes)
}

/// A learner who has just completed every lesson of the course (`totals`: lessons per
/// (campus, course)) completes the course: these enrolments, with the lesson count.
pub fn completions(state: &State, changes: &Changes, totals: &HashMap<(Uuid, Uuid), i64>) -> Vec<(Key, i64)> {
    let mut out: Vec<(Key, i64)> = state
        .progress
        .iter()
        .filter_map(|(key, p)| {
            let before = i64::from(changes.completed_before.get(key).copied().unwrap_or(0));
            let total = totals.get(&(key.0, p.course_id)).copied().unwrap_or(0);
            (total > 0 && before < total && total <= i64::from(p.lessons_completed)).then_some((*key, total))
        })
        .collect();
    out.sort_unstable();
    out
}

/// The (campus, course) pairs whose lesson counts [`completions`] needs: enrolments whose
/// completed count grew.
pub fn grown_courses(state: &State, changes: &Changes) -> Vec<(Uuid, Uuid)> {
    let mut courses: Vec<(Uuid, Uuid)> = state
        .progress
        .iter()
        .filter(|(k, p)| p.lessons_completed > changes.completed_before.get(k).copied().unwrap_or(0))
        .map(|(k, p)| (k.0, p.course_id))
        .collect();
    courses.sort_unstable();
    courses.dedup();
    courses
}

/// One gradebook row's change: attempts are added, the rest is the greatest seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    pub course_id: Uuid,
    pub user_id: Uuid,
    pub attempts: i32,
    pub best_score: f64,
    pub max_score: f64,
    pub last_graded_at: i64,
}

/// The batch's graded quiz attempts per (campus, enrolment, quiz).
pub fn grades(events: &[&Event]) -> Result<Vec<(GradeKey, Grade)>, Unappliable> {
    let mut rows: Vec<(GradeKey, Grade)> = Vec::new();
    let mut index: HashMap<GradeKey, usize> = HashMap::new();
    for event in events {
        let Body::QuizAttemptGraded(g) = event.body() else { continue };
        let key = (event.campus, event.enrolment, parse_id("quiz_id", &g.quiz_id)?);
        let at = event.envelope.occurred_at_us;
        match index.get(&key) {
            Some(&i) => {
                let row = &mut rows[i].1;
                row.attempts += 1;
                row.best_score = row.best_score.max(g.score);
                row.max_score = row.max_score.max(g.max_score);
                row.last_graded_at = row.last_graded_at.max(at);
            }
            None => {
                index.insert(key, rows.len());
                rows.push((key, Grade {
                    course_id: parse_id("course_id", &g.course_id)?,
                    user_id: parse_id("actor_id", &event.envelope.actor_id)?,
                    attempts: 1,
                    best_score: g.score,
                    max_score: g.max_score,
                    last_graded_at: at,
                }));
            }
        }
    }
    Ok(rows)
}

/// ADL verbs: see `lmsd/learning/xapi.py` (the statement is built from the stored event when read).
const ADL: &str = "http://adlnet.gov/expapi/verbs/";

/// What `xapi_statements` keeps of an event to filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub user_id: Uuid,
    pub course_id: Uuid,
    pub verb: String,
    pub activity: String,
    /// Microseconds, rounded down to the millisecond the statement carries.
    pub timestamp_us: i64,
    pub stored_us: i64,
}

/// xAPI carries milliseconds: the filterable columns hold exactly what the statement says.
fn to_millis(micros: i64) -> i64 {
    micros - micros.rem_euclid(1000)
}

/// The statement facts of a learning event; `base_url` is the portal's.
pub fn facts(event: &Event, base_url: &str) -> Result<Facts, Unappliable> {
    let body = event.body();
    let course = course_id(body).ok_or(Unappliable::NotLearning(body.name()))?;
    let course_iri = format!("{}/courses/{course}", base_url.trim_end_matches('/'));
    let (verb, activity) = match body {
        Body::EnrolmentCreated(_) => ("registered", course_iri),
        Body::EnrolmentWithdrawn(_) => ("exited", course_iri),
        Body::LessonStarted(m) => ("attempted", format!("{course_iri}/lessons/{}", m.lesson_id)),
        Body::LessonCompleted(m) => ("completed", format!("{course_iri}/lessons/{}", m.lesson_id)),
        Body::VideoWatched(m) => ("experienced", format!("{course_iri}/lessons/{}", m.lesson_id)),
        Body::QuizAttemptSubmitted(m) => ("attempted", format!("{course_iri}/quizzes/{}", m.quiz_id)),
        Body::QuizAttemptGraded(m) => ("scored", format!("{course_iri}/quizzes/{}", m.quiz_id)),
        Body::CourseCompleted(_) => ("completed", course_iri),
        _ => return Err(Unappliable::NotLearning(body.name())),
    };
    Ok(Facts {
        user_id: parse_id("user_id", learner_of(event))?,
        course_id: parse_id("course_id", course)?,
        verb: format!("{ADL}{verb}"),
        activity,
        timestamp_us: to_millis(event.envelope.occurred_at_us),
        stored_us: to_millis(event.envelope.recorded_at_us),
    })
}

#[cfg(test)]
mod tests;
