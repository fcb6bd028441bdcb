"""Data layer: SQLAlchemy 2 models, engine construction and Alembic migrations."""
