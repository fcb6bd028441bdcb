"""tests.events.test_events_faults on Citus (see __init__.py): the 100k-event fault test, where a
worker is also killed -9. (The database-away test stops the coordinator as it stops plain
PostgreSQL: the same path, not run twice.)"""

from tests.events.test_events_faults import (
    campus,
    pytestmark,
    test_100k_events_survive_relay_projector_postgres_and_nats_restarts,
)

__all__ = ["campus", "pytestmark", "test_100k_events_survive_relay_projector_postgres_and_nats_restarts"]
