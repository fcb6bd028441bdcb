//! The projections against small batches: counting once, order, completions, grades, facts.

use lmsd_proto::v1;

use super::*;

struct Batch {
    campus: Uuid,
    enrolment: Uuid,
    course: Uuid,
    user: Uuid,
}

impl Batch {
    fn new() -> Self {
        Self { campus: Uuid::new_v4(), enrolment: Uuid::new_v4(), course: Uuid::new_v4(), user: Uuid::new_v4() }
    }

    fn event(&self, at: i64, body: Body) -> Event {
        Event {
            id: Uuid::new_v4(),
            campus: self.campus,
            enrolment: self.enrolment,
            envelope: v1::Event {
                id: String::new(),
                campus_id: self.campus.to_string(),
                aggregate: "enrolment".into(),
                aggregate_id: self.enrolment.to_string(),
                version: 0,
                occurred_at_us: at,
                recorded_at_us: at + 1_500,
                actor_id: self.user.to_string(),
                body: Some(body),
            },
        }
    }

    fn lesson(&self, at: i64, lesson: Uuid, done: bool) -> Event {
        let (course_id, lesson_id) = (self.course.to_string(), lesson.to_string());
        self.event(at, if done {
            Body::LessonCompleted(v1::LessonCompleted { course_id, lesson_id })
        } else {
            Body::LessonStarted(v1::LessonStarted { course_id, lesson_id })
        })
    }

    fn watched(&self, at: i64, lesson: Uuid, ranges: &[(u32, u32)]) -> Event {
        self.event(at, Body::VideoWatched(v1::VideoWatched {
            course_id: self.course.to_string(),
            lesson_id: lesson.to_string(),
            video_id: String::new(),
            segments: ranges.iter().map(|&(start_ms, end_ms)| v1::Segment { start_ms, end_ms }).collect(),
        }))
    }

    /// A graded attempt at `quiz`, in `lesson` (None: the quiz is in no lesson).
    fn graded(&self, at: i64, quiz: Uuid, lesson: Option<Uuid>, score: f64) -> Event {
        self.event(at, Body::QuizAttemptGraded(v1::QuizAttemptGraded {
            course_id: self.course.to_string(),
            lesson_id: lesson.map(|l| l.to_string()).unwrap_or_default(),
            quiz_id: quiz.to_string(),
            score,
            max_score: 2.0,
            ..Default::default()
        }))
    }
}

fn run(state: &mut State, events: &[Event]) -> Changes {
    let refs: Vec<&Event> = events.iter().collect();
    apply_progress(state, &refs).unwrap()
}

#[test]
fn ranges_merge_like_the_python_reference() {
    assert_eq!(merge_ranges([[0, 10_000], [5_000, 20_000], [60_000, 61_000]]), (vec![[0, 20_000], [60_000, 61_000]], 21_000));
    assert_eq!(merge_ranges([[5, 5], [9, 3]]), (vec![], 0));
    assert_eq!(merge_ranges([[10, 20], [0, 10]]), (vec![[0, 20]], 20));
}

#[test]
fn counts_once_and_is_the_same_in_any_order_and_grouping() {
    let b = Batch::new();
    let (l1, l2) = (Uuid::new_v4(), Uuid::new_v4());
    let events = vec![
        b.lesson(100, l1, false),
        b.lesson(200, l1, true),
        b.lesson(150, l1, true), // again, earlier: counted once, earliest kept
        b.watched(300, l2, &[(0, 10_000), (5_000, 20_000)]),
        b.watched(300, l2, &[(60_000, 61_000)]),
    ];
    let mut one = State::default();
    run(&mut one, &events);
    let p = &one.progress[&(b.campus, b.enrolment)];
    assert_eq!((p.events, p.lessons_started, p.lessons_completed, p.watched_ms), (5, 1, 1, 21_000));
    assert_eq!((p.user_id, p.course_id), (b.user, b.course));
    // ties on time go to the greater lesson id
    assert_eq!((p.last_activity_at, p.last_lesson_id), (Some(300), Some(l2)));
    assert_eq!(one.lessons[&(b.campus, b.enrolment, l1)].completed_at, Some(150));
    assert_eq!(one.lessons[&(b.campus, b.enrolment, l2)].watched, vec![[0, 20_000], [60_000, 61_000]]);

    // reversed, one event per batch: the same rows
    let mut other = State::default();
    for event in events.iter().rev() {
        run(&mut other, std::slice::from_ref(event));
    }
    assert_eq!(one.progress, other.progress);
    assert_eq!(one.lessons, other.lessons);
}

#[test]
fn completing_every_lesson_completes_the_course_once() {
    let b = Batch::new();
    let lessons = [Uuid::new_v4(), Uuid::new_v4()];
    let totals = HashMap::from([((b.campus, b.course), 2)]);
    let mut state = State::default();
    let changes = run(&mut state, &[b.lesson(1, lessons[0], true)]);
    assert_eq!(grown_courses(&state, &changes), vec![(b.campus, b.course)]);
    assert!(completions(&state, &changes, &totals).is_empty());
    let changes = run(&mut state, &[b.lesson(2, lessons[1], true), b.lesson(3, lessons[1], true)]);
    assert_eq!(completions(&state, &changes, &totals), vec![((b.campus, b.enrolment), 2)]);
    let changes = run(&mut state, &[b.lesson(4, lessons[0], true)]);
    assert!(grown_courses(&state, &changes).is_empty());
    assert!(completions(&state, &changes, &totals).is_empty());
}

#[test]
fn grades_add_attempts_and_keep_the_best() {
    let b = Batch::new();
    let quiz = Uuid::new_v4();
    let events = [b.graded(5, quiz, None, 2.0), b.graded(9, quiz, None, 1.0), b.lesson(1, Uuid::new_v4(), false)];
    let refs: Vec<&Event> = events.iter().collect();
    let rows = grades(&refs).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, (b.campus, b.enrolment, quiz));
    assert_eq!((rows[0].1.attempts, rows[0].1.best_score, rows[0].1.last_graded_at), (2, 2.0, 9));
}

#[test]
fn facts_name_the_activity_under_the_portal() {
    let b = Batch::new();
    let lesson = Uuid::new_v4();
    let f = facts(&b.lesson(1_234_567, lesson, true), "https://lms.example.edu/").unwrap();
    assert_eq!(f.verb, "http://adlnet.gov/expapi/verbs/completed");
    assert_eq!(f.activity, format!("https://lms.example.edu/courses/{}/lessons/{lesson}", b.course));
    assert_eq!((f.timestamp_us, f.stored_us), (1_234_000, 1_236_000));
    assert_eq!(f.user_id, b.user);
}

#[test]
fn bad_ids_and_foreign_bodies_cannot_be_applied() {
    let b = Batch::new();
    let bad = b.event(1, Body::LessonStarted(v1::LessonStarted { course_id: "nope".into(), lesson_id: "nope".into() }));
    let err = apply_progress(&mut State::default(), &[&bad]).unwrap_err();
    assert_eq!(err.to_string(), "InvalidId: course_id \"nope\" is not a UUID");
    let foreign = b.event(1, Body::CoursePublished(v1::CoursePublished::default()));
    assert_eq!(facts(&foreign, "https://x").unwrap_err(), Unappliable::NotLearning("course_published"));
}

#[test]
fn a_graded_attempt_completes_the_quiz_lesson_once_and_the_course_with_it() {
    let b = Batch::new();
    let (reading, quiz_lesson, quiz) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let totals = HashMap::from([((b.campus, b.course), 2)]);
    let mut state = State::default();
    run(&mut state, &[b.lesson(1, reading, true)]);
    // failed or not, a graded attempt completes its lesson (the portal's rule, now the domain's)
    let changes = run(&mut state, &[b.graded(5, quiz, Some(quiz_lesson), 0.0)]);
    assert_eq!(changes.lessons, vec![(b.campus, b.enrolment, quiz_lesson)]);
    assert_eq!(completions(&state, &changes, &totals), vec![((b.campus, b.enrolment), 2)]);
    let p = &state.progress[&(b.campus, b.enrolment)];
    assert_eq!((p.lessons_completed, p.last_activity_at, p.last_lesson_id), (2, Some(5), Some(quiz_lesson)));
    assert_eq!(state.lessons[&(b.campus, b.enrolment, quiz_lesson)].completed_at, Some(5));
    // a second attempt, and a "mark as complete" of the same lesson: nothing more to complete
    let changes = run(&mut state, &[b.graded(9, quiz, Some(quiz_lesson), 2.0), b.lesson(7, quiz_lesson, true)]);
    assert!(grown_courses(&state, &changes).is_empty());
    assert!(completions(&state, &changes, &totals).is_empty());
    assert_eq!(state.progress[&(b.campus, b.enrolment)].lessons_completed, 2);
    assert_eq!(state.lessons[&(b.campus, b.enrolment, quiz_lesson)].completed_at, Some(5));
}

#[test]
fn a_graded_attempt_at_a_quiz_in_no_lesson_completes_nothing() {
    let b = Batch::new();
    let events = [b.graded(5, Uuid::new_v4(), None, 2.0)];
    let refs: Vec<&Event> = events.iter().collect();
    assert!(lesson_keys(&refs).unwrap().is_empty());
    let mut state = State::default();
    let changes = run(&mut state, &events);
    assert!(changes.lessons.is_empty() && state.lessons.is_empty());
    let p = &state.progress[&(b.campus, b.enrolment)];
    assert_eq!((p.events, p.lessons_completed, p.last_activity_at), (1, 0, None));
}

#[test]
fn quiz_completion_is_the_same_in_any_order_and_grouping() {
    let b = Batch::new();
    let (lesson, quiz) = (Uuid::new_v4(), Uuid::new_v4());
    let events = vec![b.lesson(1, lesson, false), b.graded(4, quiz, Some(lesson), 1.0), b.lesson(6, lesson, true), b.graded(3, quiz, Some(lesson), 2.0)];
    let refs: Vec<&Event> = events.iter().collect();
    assert_eq!(lesson_keys(&refs).unwrap(), vec![(b.campus, b.enrolment, lesson)]);
    let mut one = State::default();
    run(&mut one, &events);
    let mut other = State::default();
    for event in events.iter().rev() {
        run(&mut other, std::slice::from_ref(event));
    }
    assert_eq!(one.progress, other.progress);
    assert_eq!(one.lessons, other.lessons);
    assert_eq!(one.lessons[&(b.campus, b.enrolment, lesson)].completed_at, Some(3));
    assert_eq!(one.progress[&(b.campus, b.enrolment)].lessons_completed, 1);
}
