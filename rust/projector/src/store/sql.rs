//! The projector's SQL: reads prepared once per connection, batch writes as multi-row VALUES.
//! `tests/citus/test_routing.py` reads these statements from this file and checks that Citus
//! routes each of them to one shard.

use tokio_postgres::{types::ToSql, Client, Row, Statement, Transaction};

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
// The batch writes are multi-row `INSERT ... VALUES {rows}`, one `*_ROW` per row with `$` for its
// parameters ([`values`] numbers them): Citus routes such a statement of one campus to its shard
// and commits the campus's transaction in one phase. The same rows as `INSERT ... SELECT FROM
// unnest(...)` go through the coordinator as a COPY, which Citus always commits in two phases
// (PREPARE TRANSACTION, a row in pg_dist_transaction, COMMIT PREPARED): several times the work.
const CLAIM: &str = "INSERT INTO consumer_applied (campus_id, consumer, event_id, stream_seq) VALUES {rows}
ON CONFLICT DO NOTHING RETURNING campus_id, event_id";
const CLAIM_ROW: &str = "($::uuid, $::text, $::uuid, $::bigint)";
const COUNT: &str = "INSERT INTO event_consumers AS c (name, applied, last_stream_seq, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET applied = c.applied + excluded.applied,
  last_stream_seq = greatest(c.last_stream_seq, excluded.last_stream_seq), updated_at = excluded.updated_at";
// `campus_id = ANY($1)` repeats the join's campuses as a filter Citus can prune by: without it a
// join with unnest() is sent to every shard; with it, a batch of one campus reads one shard.
// The reads lock the rows they return and the upserts say which rows they inserted: a worker lost
// between PREPARE and COMMIT PREPARED of a batch that did commit in two phases (one that spans
// workers, or written by an older projector) keeps that batch's rows locked, not yet visible,
// until the coordinator's recovery commits it. The next batch of the same enrolments waits for
// those locks (FOR UPDATE), and a row it took for new but that such a batch had inserted is
// reported by `xmax = 0` being false: it applies again (`Failure::Overtaken`) rather than
// overwrite it.
const SELECT_PROGRESS: &str = concat!(
    "SELECT p.campus_id, p.enrolment_id, course_id, user_id, events, lessons_started, lessons_completed,
       watched_ms, quiz_attempts, last_lesson_id, ",
    us!("p.last_activity_at"), ", ", us!("p.completed_at"), "
FROM progress p JOIN unnest($1::uuid[], $2::uuid[]) AS k(c, e) ON p.campus_id = k.c AND p.enrolment_id = k.e
WHERE p.campus_id = ANY($1) FOR UPDATE OF p"
);
const UPSERT_PROGRESS: &str = "INSERT INTO progress (campus_id, enrolment_id, course_id, user_id, events, lessons_started,
  lessons_completed, watched_ms, quiz_attempts, last_lesson_id, last_activity_at, completed_at)
VALUES {rows}
ON CONFLICT (campus_id, enrolment_id) DO UPDATE SET course_id = excluded.course_id,
  user_id = excluded.user_id, events = excluded.events, lessons_started = excluded.lessons_started,
  lessons_completed = excluded.lessons_completed, watched_ms = excluded.watched_ms,
  quiz_attempts = excluded.quiz_attempts, last_lesson_id = excluded.last_lesson_id,
  last_activity_at = excluded.last_activity_at, completed_at = excluded.completed_at
RETURNING campus_id, enrolment_id, xmax = 0";
const PROGRESS_ROW: &str = concat!(
    "($::uuid, $::uuid, $::uuid, $::uuid, $::bigint, $::int, $::int, $::bigint, $::int, $::uuid, ",
    ts!("$::bigint"), ", ", ts!("$::bigint"), ")"
);
const SELECT_LESSONS: &str = concat!(
    "SELECT l.campus_id, l.enrolment_id, l.lesson_id, ",
    us!("l.started_at"), ", ", us!("l.completed_at"), ", l.watched::text, l.watched_ms
FROM lesson_progress l JOIN unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS k(c, e, i)
  ON l.campus_id = k.c AND l.enrolment_id = k.e AND l.lesson_id = k.i
WHERE l.campus_id = ANY($1) FOR UPDATE OF l"
);
const UPSERT_LESSONS: &str = "INSERT INTO lesson_progress (campus_id, enrolment_id, lesson_id, started_at, completed_at, watched, watched_ms)
VALUES {rows}
ON CONFLICT (campus_id, enrolment_id, lesson_id) DO UPDATE SET started_at = excluded.started_at,
  completed_at = excluded.completed_at, watched = excluded.watched, watched_ms = excluded.watched_ms
RETURNING campus_id, enrolment_id, lesson_id, xmax = 0";
const LESSON_ROW: &str = concat!(
    "($::uuid, $::uuid, $::uuid, ", ts!("$::bigint"), ", ", ts!("$::bigint"), ", $::text::jsonb, $::bigint)"
);
const UPSERT_GRADES: &str = "INSERT INTO grades AS g (campus_id, enrolment_id, quiz_id, course_id, user_id, attempts, best_score,
  max_score, last_graded_at)
VALUES {rows}
ON CONFLICT (campus_id, enrolment_id, quiz_id) DO UPDATE SET
  attempts = g.attempts + excluded.attempts,
  best_score = greatest(g.best_score, excluded.best_score),
  max_score = greatest(g.max_score, excluded.max_score),
  last_graded_at = greatest(g.last_graded_at, excluded.last_graded_at)";
const GRADE_ROW: &str = concat!(
    "($::uuid, $::uuid, $::uuid, $::uuid, $::uuid, $::int, $::float8, $::float8, ", ts!("$::bigint"), ")"
);
const INSERT_STATEMENTS: &str = "INSERT INTO xapi_statements (campus_id, id, user_id, course_id, verb, activity, \"timestamp\", stored, event)
VALUES {rows}
ON CONFLICT DO NOTHING";
const STATEMENT_ROW: &str = concat!(
    "($::uuid, $::uuid, $::uuid, $::uuid, $::text, $::text, ", ts!("$::bigint"), ", ", ts!("$::bigint"), ", $::bytea)"
);
const LESSON_TOTALS: &str = "SELECT l.campus_id, l.course_id, count(*) FROM lessons l
JOIN unnest($1::uuid[], $2::uuid[]) AS k(c, i) ON l.campus_id = k.c AND l.course_id = k.i
WHERE l.campus_id = ANY($1)
GROUP BY l.campus_id, l.course_id";
// rows in (campus, enrolment) order, as lmsd.events.outbox allocates: writers lock in one order
const ALLOCATE: &str = "INSERT INTO event_aggregates AS a (campus_id, aggregate, aggregate_id, version)
VALUES {rows}
ON CONFLICT (campus_id, aggregate, aggregate_id) DO UPDATE SET version = a.version + excluded.version
RETURNING campus_id, aggregate_id, version";
const ALLOCATE_ROW: &str = "($::uuid, 'enrolment', $::uuid, $::bigint)";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (campus_id, id, subject, aggregate, aggregate_id, version, payload)
VALUES {rows}";
const OUTBOX_ROW: &str = "($::uuid, $::uuid, $::text, 'enrolment', $::uuid, $::bigint, $::bytea)";

/// At most this many parameters per statement (PostgreSQL's protocol allows 65,535).
const MAX_PARAMETERS: usize = 32_767;

/// A multi-row write: its statement (with `{rows}`) and one row (with `$` per parameter).
#[derive(Clone, Copy)]
pub(super) struct Rows {
    template: &'static str,
    row: &'static str,
}

pub(super) const CLAIM_ROWS: Rows = Rows { template: CLAIM, row: CLAIM_ROW };
pub(super) const PROGRESS_ROWS: Rows = Rows { template: UPSERT_PROGRESS, row: PROGRESS_ROW };
pub(super) const LESSON_ROWS: Rows = Rows { template: UPSERT_LESSONS, row: LESSON_ROW };
pub(super) const GRADE_ROWS: Rows = Rows { template: UPSERT_GRADES, row: GRADE_ROW };
pub(super) const STATEMENT_ROWS: Rows = Rows { template: INSERT_STATEMENTS, row: STATEMENT_ROW };
pub(super) const ALLOCATE_ROWS: Rows = Rows { template: ALLOCATE, row: ALLOCATE_ROW };
pub(super) const OUTBOX_ROWS: Rows = Rows { template: INSERT_OUTBOX, row: OUTBOX_ROW };

impl Rows {
    fn columns(self) -> usize {
        self.row.matches('$').count()
    }

    /// The statement for `count` rows, parameters numbered `$1` onwards row after row.
    fn sql(self, count: usize) -> String {
        let parts: Vec<&str> = self.row.split('$').collect();
        let mut rows = String::with_capacity(count * (self.row.len() + 4 * parts.len()));
        let mut n = 0;
        for r in 0..count {
            if r > 0 {
                rows.push_str(", ");
            }
            rows.push_str(parts[0]);
            for part in &parts[1..] {
                n += 1;
                rows.push('$');
                rows.push_str(&n.to_string());
                rows.push_str(part);
            }
        }
        self.template.replacen("{rows}", &rows, 1)
    }

    /// Writes the rows of `params` (row after row, [`Rows::columns`] each), in statements of at
    /// most [`MAX_PARAMETERS`] parameters; the rows they return.
    pub(super) async fn write(
        self,
        tx: &Transaction<'_>,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let columns = self.columns();
        debug_assert_eq!(params.len() % columns, 0);
        let mut out = Vec::new();
        for chunk in params.chunks(MAX_PARAMETERS / columns * columns) {
            out.extend(tx.query(self.sql(chunk.len() / columns).as_str(), chunk).await?);
        }
        Ok(out)
    }
}

/// The other statements, prepared once per connection.
pub struct Statements {
    pub(super) lock: Statement,
    pub(super) count: Statement,
    pub(super) select_progress: Statement,
    pub(super) select_lessons: Statement,
    pub(super) lesson_totals: Statement,
}

impl Statements {
    pub async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let (lock, count, select_progress, select_lessons, lesson_totals) = tokio::try_join!(
            client.prepare(LOCK),
            client.prepare(COUNT),
            client.prepare(SELECT_PROGRESS),
            client.prepare(SELECT_LESSONS),
            client.prepare(LESSON_TOTALS),
        )?;
        Ok(Self { lock, count, select_progress, select_lessons, lesson_totals })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_row_after_row() {
        let sql = CLAIM_ROWS.sql(2);
        assert!(sql.contains("VALUES ($1::uuid, $2::text, $3::uuid, $4::bigint), ($5::uuid, $6::text, $7::uuid, $8::bigint)\n"), "{sql}");
        let progress = PROGRESS_ROWS.sql(3);
        assert!(progress.contains("$36::bigint * interval '1 microsecond')\nON CONFLICT"), "{progress}");
        assert!(!progress.contains("$37") && !progress.contains("{rows}"));
    }

    #[test]
    fn each_row_takes_its_columns_parameters() {
        let all = [CLAIM_ROWS, PROGRESS_ROWS, LESSON_ROWS, GRADE_ROWS, STATEMENT_ROWS, ALLOCATE_ROWS, OUTBOX_ROWS];
        assert_eq!(all.map(Rows::columns), [4, 12, 7, 9, 9, 3, 6]);
        // a chunk is whole rows, within PostgreSQL's limit
        assert!(all.iter().all(|r| MAX_PARAMETERS / r.columns() * r.columns() <= 65_535));
    }
}
