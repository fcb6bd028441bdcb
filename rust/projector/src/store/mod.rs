//! One batch, one PostgreSQL transaction per campus in it (`apply_batch`), as
//! `lmsd.events.consumers.apply_batch` does it in Python: lock the batch's enrolments, claim the
//! event ids (an id this consumer has applied before is skipped, so redelivery changes nothing),
//! apply the new events to the progress, gradebook and xAPI tables, record course completions in
//! the outbox; then count.
//!
//! Independent statements go out together (tokio-postgres pipelines the queries of one
//! connection), so a batch costs about five round trips whatever its size.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use lmsd_proto::v1::{self, event::Body};
use prost::Message;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::{
    event::{subject, Event},
    projection::{self, Lesson, Progress, State, Unappliable},
};

/// An event as delivered by JetStream.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub event: Event,
    pub stream_seq: u64,
    /// The message as delivered (the encoded event): `xapi_statements.event` keeps it.
    pub data: Bytes,
}

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Some event of the batch cannot be applied.
    #[error(transparent)]
    Unappliable(#[from] Unappliable),
    /// The database refused or is away (see [`crate::consumer`] for which is which).
    #[error("Database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// A row the batch took for new had been inserted by a batch not yet visible when it read
    /// (see store/sql.rs): rolled back, to be applied again.
    #[error("a progress row was inserted meanwhile")]
    Overtaken,
}

/// A database error in words: the server's message and SQLSTATE when it answered, else the
/// client's error with its cause ("connection closed", "error connecting to server: …").
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

/// Events of `course_completed` follow-ups get ids derived from (enrolment, lesson count),
/// the same as `lmsd.learning.projections.COMPLETION_NS` gives in Python.
pub const COMPLETION_NS: Uuid = Uuid::from_u128(0x5b0d7a52_8f8e_4b8e_9a57_6c6d73640001);

mod columns;
mod sql;

use columns::{FactColumns, GradeColumns, LessonColumns, ProgressColumns};
pub use sql::Statements;

/// Advisory lock keys (signed 64-bit, sorted, each once) of a consumer's enrolments: the same
/// keys as `lmsd.events.consumers.lock_keys`, so Python and Rust appliers exclude each other.
pub fn lock_keys(consumer: &str, aggregates: impl IntoIterator<Item = Uuid>) -> Vec<i64> {
    let salt = u64::from(crc32fast::hash(consumer.as_bytes())) << 31;
    let mut keys: Vec<i64> = aggregates
        .into_iter()
        .map(|a| {
            let high = (a.as_u128() >> 64) as u64;
            // (high ^ salt) - 2**63, as a signed 64-bit number
            ((high ^ salt) ^ (1 << 63)) as i64
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn now_us() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// Applies one batch: one transaction per campus in it, then the consumer's count (its own
/// statement, on a reference table: in the campus's transaction it would make the commit span
/// every node); returns how many events were new to the consumer. The count is informational
/// (`lmsd events status`): a crash between a commit and the count leaves it short by that batch.
pub async fn apply_batch(
    client: &mut Client,
    st: &Statements,
    consumer: &str,
    base_url: &str,
    batch: &[Delivered],
) -> Result<usize, Failure> {
    let mut applied = 0;
    for campus in by_campus(batch) {
        applied += apply_campus(client, st, consumer, base_url, &campus).await?;
    }
    let last_seq = batch.iter().map(|d| d.stream_seq as i64).max().unwrap_or(0);
    client.execute(&st.count, &[&consumer, &(applied as i64), &last_seq]).await?;
    Ok(applied)
}

/// The batch's events per campus, each campus's in delivery order.
fn by_campus(batch: &[Delivered]) -> Vec<Vec<&Delivered>> {
    let mut groups: Vec<Vec<&Delivered>> = Vec::new();
    let mut at: HashMap<Uuid, usize> = HashMap::new();
    for d in batch {
        let i = *at.entry(d.event.campus).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(d);
    }
    groups
}

/// One campus's events in one transaction: its shard group only, on Citus.
async fn apply_campus(
    client: &mut Client,
    st: &Statements,
    consumer: &str,
    base_url: &str,
    batch: &[&Delivered],
) -> Result<usize, Failure> {
    let tx = client.transaction().await?;
    let keys = lock_keys(consumer, batch.iter().map(|d| d.event.enrolment));
    let campuses: Vec<Uuid> = batch.iter().map(|d| d.event.campus).collect();
    let ids: Vec<Uuid> = batch.iter().map(|d| d.event.id).collect();
    let seqs: Vec<i64> = batch.iter().map(|d| d.stream_seq as i64).collect();
    let (_, claimed) = tokio::try_join!(
        async { tx.execute(&st.lock, &[&keys]).await },
        async { tx.query(&st.claim, &[&consumer, &campuses, &ids, &seqs]).await },
    )?;
    let mut claimed: HashSet<(Uuid, Uuid)> = claimed.iter().map(|r| (r.get(0), r.get(1))).collect();
    // the first delivery of each claimed id (a batch may hold one event twice)
    let fresh: Vec<&Delivered> = batch
        .iter()
        .copied()
        .filter(|d| claimed.remove(&(d.event.campus, d.event.id)))
        .collect();
    if fresh.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let events: Vec<&Event> = fresh.iter().map(|d| &d.event).collect();
    // also refuses a batch with an event that is not a learning event (NotLearning)
    let facts = fresh
        .iter()
        .map(|d| projection::facts(&d.event, base_url))
        .collect::<Result<Vec<_>, _>>()?;
    let grades = projection::grades(&events)?;
    let mut state = load(&tx, st, &events).await?;
    let stored: HashSet<(Uuid, Uuid)> = state.progress.keys().copied().collect();
    let stored_lessons: HashSet<(Uuid, Uuid, Uuid)> = state.lessons.keys().copied().collect();
    let changes = projection::apply_progress(&mut state, &events)?;
    let follow_ups = completions(&tx, st, &state, &changes).await?;

    let progress: Vec<(&(Uuid, Uuid), &Progress)> = state.progress.iter().collect();
    let lessons: Vec<(&(Uuid, Uuid, Uuid), &Lesson)> =
        changes.lessons.iter().map(|k| (k, &state.lessons[k])).collect();
    let p = ProgressColumns::new(&progress);
    let l = LessonColumns::new(&lessons);
    let g = GradeColumns::new(&grades);
    let x = FactColumns::new(&fresh, &facts);
    let (progress_rows, lesson_rows, ..) = tokio::try_join!(
        async {
            tx.query(&st.upsert_progress, &[
                &p.campus, &p.enrolment, &p.course, &p.user, &p.events, &p.started, &p.completed,
                &p.watched_ms, &p.quiz_attempts, &p.last_lesson, &p.last_activity, &p.completed_at,
            ])
            .await
        },
        async {
            if l.campus.is_empty() {
                return Ok(Vec::new());
            }
            tx.query(&st.upsert_lessons, &[
                &l.campus, &l.enrolment, &l.lesson, &l.started, &l.completed, &l.watched, &l.watched_ms,
            ])
            .await
        },
        async {
            if g.campus.is_empty() {
                return Ok(0);
            }
            tx.execute(&st.upsert_grades, &[
                &g.campus, &g.enrolment, &g.quiz, &g.course, &g.user, &g.attempts, &g.best, &g.max, &g.at,
            ])
            .await
        },
        async {
            tx.execute(&st.insert_statements, &[
                &x.campus, &x.id, &x.user, &x.course, &x.verb, &x.activity, &x.timestamp, &x.stored, &x.event,
            ])
            .await
        },
        record(&tx, st, follow_ups),
    )?;
    // a row taken for new that was there after all: overwritten with this batch's view of it
    let overtaken = progress_rows.iter().any(|r| !r.get::<_, bool>(2) && !stored.contains(&(r.get(0), r.get(1))))
        || lesson_rows
            .iter()
            .any(|r| !r.get::<_, bool>(3) && !stored_lessons.contains(&(r.get(0), r.get(1), r.get(2))));
    if overtaken {
        tx.rollback().await?;
        return Err(Failure::Overtaken);
    }
    tx.commit().await?;
    Ok(fresh.len())
}

/// The stored progress and lesson rows of the batch's enrolments and lessons.
async fn load(tx: &tokio_postgres::Transaction<'_>, st: &Statements, events: &[&Event]) -> Result<State, Failure> {
    let keys = projection::progress_keys(events);
    let lesson_keys = projection::lesson_keys(events)?;
    let (kc, ke): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let lc: Vec<Uuid> = lesson_keys.iter().map(|k| k.0).collect();
    let le: Vec<Uuid> = lesson_keys.iter().map(|k| k.1).collect();
    let ll: Vec<Uuid> = lesson_keys.iter().map(|k| k.2).collect();
    let (progress_rows, lesson_rows) = tokio::try_join!(
        async { tx.query(&st.select_progress, &[&kc, &ke]).await },
        async {
            if ll.is_empty() {
                return Ok(Vec::new());
            }
            tx.query(&st.select_lessons, &[&lc, &le, &ll]).await
        },
    )?;
    let mut state = State::default();
    for r in progress_rows {
        state.progress.insert((r.get(0), r.get(1)), Progress {
            course_id: r.get(2),
            user_id: r.get(3),
            events: r.get(4),
            lessons_started: r.get(5),
            lessons_completed: r.get(6),
            watched_ms: r.get(7),
            quiz_attempts: r.get(8),
            last_lesson_id: r.get(9),
            last_activity_at: r.get(10),
            completed_at: r.get(11),
        });
    }
    for r in lesson_rows {
        let watched: String = r.get(5);
        state.lessons.insert((r.get(0), r.get(1), r.get(2)), Lesson {
            started_at: r.get(3),
            completed_at: r.get(4),
            // written by us or by the Python projection: [[start, end], …]
            watched: serde_json::from_str(&watched).unwrap_or_default(),
            watched_ms: r.get(6),
        });
    }
    Ok(state)
}

/// A `course_completed` event to record for each enrolment that has just completed its course.
async fn completions(
    tx: &tokio_postgres::Transaction<'_>,
    st: &Statements,
    state: &State,
    changes: &projection::Changes,
) -> Result<Vec<(projection::Key, v1::Event)>, Failure> {
    let courses = projection::grown_courses(state, changes);
    if courses.is_empty() {
        return Ok(Vec::new());
    }
    let (cc, ci): (Vec<Uuid>, Vec<Uuid>) = courses.into_iter().unzip();
    let totals: HashMap<(Uuid, Uuid), i64> = tx
        .query(&st.lesson_totals, &[&cc, &ci])
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let recorded = now_us();
    Ok(projection::completions(state, changes, &totals)
        .into_iter()
        .map(|(key, total)| {
            let p = &state.progress[&key];
            let envelope = v1::Event {
                id: Uuid::new_v5(&COMPLETION_NS, format!("{}:{total}", key.1).as_bytes()).to_string(),
                campus_id: key.0.to_string(),
                aggregate: "enrolment".into(),
                aggregate_id: key.1.to_string(),
                version: 0, // given by the outbox
                occurred_at_us: p.last_activity_at.unwrap_or(recorded),
                recorded_at_us: recorded,
                actor_id: p.user_id.to_string(),
                body: Some(Body::CourseCompleted(v1::CourseCompleted {
                    course_id: p.course_id.to_string(),
                    lessons_completed: u32::try_from(total).unwrap_or(u32::MAX),
                })),
            };
            (key, envelope)
        })
        .collect())
}

/// Records follow-up events in the outbox, each as the next version of its enrolment (the
/// relay publishes them after commit, like any other event).
async fn record(
    tx: &tokio_postgres::Transaction<'_>,
    st: &Statements,
    events: Vec<(projection::Key, v1::Event)>,
) -> Result<u64, tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    // one event per enrolment at most: each gets its enrolment's next version
    let campus: Vec<Uuid> = events.iter().map(|(k, _)| k.0).collect();
    let aggregate: Vec<Uuid> = events.iter().map(|(k, _)| k.1).collect();
    let counts = vec![1i64; events.len()];
    let versions: HashMap<(Uuid, Uuid), i64> = tx
        .query(&st.allocate, &[&campus, &aggregate, &counts])
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let mut ids = Vec::new();
    let mut subjects = Vec::new();
    let mut version_col = Vec::new();
    let mut payloads = Vec::new();
    for (key, mut envelope) in events {
        let version = versions[&key];
        envelope.version = version as u64;
        ids.push(Uuid::parse_str(&envelope.id).expect("made above"));
        subjects.push(subject(key.0, "enrolment", key.1, envelope.body.as_ref().expect("set above")));
        version_col.push(version);
        payloads.push(envelope.encode_to_vec());
    }
    tx.execute(&st.insert_outbox, &[&campus, &ids, &subjects, &aggregate, &version_col, &payloads])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_the_python_ones() {
        // lmsd.events.consumers.lock_keys("learning", {these three}), computed in Python
        let ids = [
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-0000-000000000000",
            "0123abcd-4567-89ef-0123-456789abcdef",
            "00000000-0000-0000-0000-000000000000",
        ];
        let keys = lock_keys("learning", ids.iter().map(|s| Uuid::parse_str(s).unwrap()));
        assert_eq!(keys, vec![-1_828_046_192_929_961_489, -1_764_616_789_922_152_448, 1_764_616_789_922_152_447]);
    }

    #[test]
    fn completion_ids_are_python_uuid5() {
        // uuid.uuid5(COMPLETION_NS, "00000000-0000-0000-0000-000000000000:4"), in Python
        let id = Uuid::new_v5(&COMPLETION_NS, format!("{}:4", Uuid::nil()).as_bytes());
        assert_eq!(id.to_string(), "cd59b15f-a265-570a-8539-0dd62c446304");
    }
}
