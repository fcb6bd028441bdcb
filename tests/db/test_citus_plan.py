"""The schema stays shardable by Citus: the plan in lmsd.db.models holds for every table."""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, PrimaryKeyConstraint, UniqueConstraint

from lmsd.db.models import CITUS_DISTRIBUTED, CITUS_REFERENCE, Base

TABLES = Base.metadata.tables


def test_every_table_has_a_place_in_the_plan() -> None:
    planned = set(CITUS_DISTRIBUTED) | set(CITUS_REFERENCE)
    assert planned == set(TABLES), f"unplanned: {set(TABLES) - planned}, stale: {planned - set(TABLES)}"
    assert not set(CITUS_DISTRIBUTED) & set(CITUS_REFERENCE)
    assert {"courses", "enrolments"} <= set(CITUS_DISTRIBUTED)


def test_keys_of_distributed_tables_include_the_distribution_column() -> None:
    problems = []
    for name, column in CITUS_DISTRIBUTED.items():
        table = TABLES[name]
        assert column in table.c, f"{name} lacks its distribution column {column}"
        for constraint in table.constraints:
            if isinstance(constraint, (PrimaryKeyConstraint, UniqueConstraint)):
                cols = [c.name for c in constraint.columns]
                if column not in cols:
                    problems.append(f"{name}: {type(constraint).__name__} {cols} omits {column}")
        for index in table.indexes:
            if index.unique and column not in [c.name for c in index.columns]:
                problems.append(f"{name}: unique index {index.name} omits {column}")
    assert not problems, problems


def test_foreign_keys_between_distributed_tables_carry_the_column_and_colocate() -> None:
    problems = []
    for name, column in CITUS_DISTRIBUTED.items():
        for fk in TABLES[name].constraints:
            if not isinstance(fk, ForeignKeyConstraint):
                continue
            target = fk.referred_table.name
            if target in CITUS_REFERENCE:
                continue  # distributed -> reference is always allowed
            pairs = {(e.parent.name, e.column.name) for e in fk.elements}
            if (column, CITUS_DISTRIBUTED[target]) not in pairs:
                problems.append(f"{name} -> {target}: {sorted(pairs)} does not join on {column}")
    assert not problems, problems


def test_reference_tables_point_at_no_distributed_table() -> None:
    for name in CITUS_REFERENCE:
        for fk in TABLES[name].foreign_keys:
            assert fk.column.table.name in CITUS_REFERENCE, f"reference table {name} points at {fk.column.table.name}"
