//! The projector's SQL, prepared once per connection. `tests/citus/test_routing.py` reads these
//! statements from this file and checks that Citus routes each of them to one shard.

use tokio_postgres::{Client, Statement};

/// Microseconds since the epoch → timestamptz, exactly.
macro_rules! ts {
    ($e:literal) => {
        concat!("'epoch'::timestamptz + ", $e, " * interval '1 microsecond'")
    };
}
/// A stored time → microseconds since the epoch, exactly.
macro_rules! us {
    ($e:literal) => {
        concat!("(extract(epoch from ", $e, ") * 1000000)::bigint")
    };
}

const LOCK: &str = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k";
const CLAIM: &str = "INSERT INTO consumer_applied (campus_id, consumer, event_id, stream_seq)
SELECT c, $1, e, s FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS u(c, e, s)
ON CONFLICT DO NOTHING RETURNING campus_id, event_id";
const COUNT: &str = "INSERT INTO event_consumers AS c (name, applied, last_stream_seq, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET applied = c.applied + excluded.applied,
  last_stream_seq = greatest(c.last_stream_seq, excluded.last_stream_seq), updated_at = excluded.updated_at";
// `campus_id = ANY($1)` repeats the join's campuses as a filter Citus can prune by: without it a
// join with unnest() is sent to every shard; with it, a batch of one campus reads one shard.
// The reads lock the rows they return and the upserts say which rows they inserted: on Citus a
// batch commits in two phases (an INSERT ... SELECT FROM unnest always does), and a worker lost
// between PREPARE and COMMIT PREPARED keeps that batch's rows locked, not yet visible, until the
// coordinator's recovery commits it. The next batch of the same enrolments waits for those locks
// (FOR UPDATE), and a row it took for new but that such a batch had inserted is reported by
// `xmax = 0` being false: it applies again (`Failure::Overtaken`) rather than overwrite it.
const SELECT_PROGRESS: &str = concat!(
    "SELECT p.campus_id, p.enrolment_id, course_id, user_id, events, lessons_started, lessons_completed,
       watched_ms, quiz_attempts, last_lesson_id, ",
    us!("p.last_activity_at"), ", ", us!("p.completed_at"), "
FROM progress p JOIN unnest($1::uuid[], $2::uuid[]) AS k(c, e) ON p.campus_id = k.c AND p.enrolment_id = k.e
WHERE p.campus_id = ANY($1) FOR UPDATE OF p"
);
const UPSERT_PROGRESS: &str = concat!(
    "INSERT INTO progress (campus_id, enrolment_id, course_id, user_id, events, lessons_started,
  lessons_completed, watched_ms, quiz_attempts, last_lesson_id, last_activity_at, completed_at)
SELECT c, e, k, u, n, s, d, w, q, l, ", ts!("a"), ", ", ts!("f"), "
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::int[], $7::int[],
            $8::bigint[], $9::int[], $10::uuid[], $11::bigint[], $12::bigint[]) AS x(c, e, k, u, n, s, d, w, q, l, a, f)
ON CONFLICT (campus_id, enrolment_id) DO UPDATE SET course_id = excluded.course_id,
  user_id = excluded.user_id, events = excluded.events, lessons_started = excluded.lessons_started,
  lessons_completed = excluded.lessons_completed, watched_ms = excluded.watched_ms,
  quiz_attempts = excluded.quiz_attempts, last_lesson_id = excluded.last_lesson_id,
  last_activity_at = excluded.last_activity_at, completed_at = excluded.completed_at
RETURNING campus_id, enrolment_id, xmax = 0"
);
const SELECT_LESSONS: &str = concat!(
    "SELECT l.campus_id, l.enrolment_id, l.lesson_id, ",
    us!("l.started_at"), ", ", us!("l.completed_at"), ", l.watched::text, l.watched_ms
FROM lesson_progress l JOIN unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS k(c, e, i)
  ON l.campus_id = k.c AND l.enrolment_id = k.e AND l.lesson_id = k.i
WHERE l.campus_id = ANY($1) FOR UPDATE OF l"
);
const UPSERT_LESSONS: &str = concat!(
    "INSERT INTO lesson_progress (campus_id, enrolment_id, lesson_id, started_at, completed_at, watched, watched_ms)
SELECT c, e, l, ", ts!("s"), ", ", ts!("d"), ", w::jsonb, m
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[]) AS u(c, e, l, s, d, w, m)
ON CONFLICT (campus_id, enrolment_id, lesson_id) DO UPDATE SET started_at = excluded.started_at,
  completed_at = excluded.completed_at, watched = excluded.watched, watched_ms = excluded.watched_ms
RETURNING campus_id, enrolment_id, lesson_id, xmax = 0"
);
const UPSERT_GRADES: &str = concat!(
    "INSERT INTO grades AS g (campus_id, enrolment_id, quiz_id, course_id, user_id, attempts, best_score,
  max_score, last_graded_at)
SELECT c, e, q, k, u, n, b, m, ", ts!("t"), "
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int[], $7::float8[],
            $8::float8[], $9::bigint[]) AS x(c, e, q, k, u, n, b, m, t)
ON CONFLICT (campus_id, enrolment_id, quiz_id) DO UPDATE SET
  attempts = g.attempts + excluded.attempts,
  best_score = greatest(g.best_score, excluded.best_score),
  max_score = greatest(g.max_score, excluded.max_score),
  last_graded_at = greatest(g.last_graded_at, excluded.last_graded_at)"
);
const INSERT_STATEMENTS: &str = concat!(
    "INSERT INTO xapi_statements (campus_id, id, user_id, course_id, verb, activity, \"timestamp\", stored, event)
SELECT c, i, u, k, v, a, ", ts!("t"), ", ", ts!("s"), ", e
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::bigint[],
  $8::bigint[], $9::bytea[]) AS x(c, i, u, k, v, a, t, s, e)
ON CONFLICT DO NOTHING"
);
const LESSON_TOTALS: &str = "SELECT l.campus_id, l.course_id, count(*) FROM lessons l
JOIN unnest($1::uuid[], $2::uuid[]) AS k(c, i) ON l.campus_id = k.c AND l.course_id = k.i
WHERE l.campus_id = ANY($1)
GROUP BY l.campus_id, l.course_id";
const ALLOCATE: &str = "INSERT INTO event_aggregates AS a (campus_id, aggregate, aggregate_id, version)
SELECT c, 'enrolment', i, n FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(c, i, n)
ORDER BY c, i
ON CONFLICT (campus_id, aggregate, aggregate_id) DO UPDATE SET version = a.version + excluded.version
RETURNING campus_id, aggregate_id, version";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (campus_id, id, subject, aggregate, aggregate_id, version, payload)
SELECT c, i, s, 'enrolment', a, v, p FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::bigint[], $6::bytea[])
  AS u(c, i, s, a, v, p)";

/// The statements, prepared once per connection.
pub struct Statements {
    pub(super) lock: Statement,
    pub(super) claim: Statement,
    pub(super) count: Statement,
    pub(super) select_progress: Statement,
    pub(super) upsert_progress: Statement,
    pub(super) select_lessons: Statement,
    pub(super) upsert_lessons: Statement,
    pub(super) upsert_grades: Statement,
    pub(super) insert_statements: Statement,
    pub(super) lesson_totals: Statement,
    pub(super) allocate: Statement,
    pub(super) insert_outbox: Statement,
}

impl Statements {
    pub async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let (lock, claim, count, select_progress, upsert_progress, select_lessons) = tokio::try_join!(
            client.prepare(LOCK),
            client.prepare(CLAIM),
            client.prepare(COUNT),
            client.prepare(SELECT_PROGRESS),
            client.prepare(UPSERT_PROGRESS),
            client.prepare(SELECT_LESSONS),
        )?;
        let (upsert_lessons, upsert_grades, insert_statements, lesson_totals, allocate, insert_outbox) = tokio::try_join!(
            client.prepare(UPSERT_LESSONS),
            client.prepare(UPSERT_GRADES),
            client.prepare(INSERT_STATEMENTS),
            client.prepare(LESSON_TOTALS),
            client.prepare(ALLOCATE),
            client.prepare(INSERT_OUTBOX),
        )?;
        Ok(Self {
            lock,
            claim,
            count,
            select_progress,
            upsert_progress,
            select_lessons,
            upsert_lessons,
            upsert_grades,
            insert_statements,
            lesson_totals,
            allocate,
            insert_outbox,
        })
    }
}
