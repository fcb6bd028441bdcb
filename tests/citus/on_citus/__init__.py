"""The product's suites on Citus, in the same pytest run as on plain PostgreSQL.

Each module here is one suite of the product imported whole (``from tests.x.test_y import *``):
pytest collects its tests again under this package, where ``conftest.py`` switches them to Citus:
the in-process API's ``database`` is a coordinator with two workers (tests/citus/cluster.py,
migrated through Citus) and every campus a test installs runs ``--citus-workers 2``. Which suites:
the API's (courses, identity, enrolments, quizzes), the authorisation matrix, the event suites
(the 100k-event fault test kills a worker under load there) and the learner's portal journey.
Skipped, with the reason, where Citus is not installed."""
