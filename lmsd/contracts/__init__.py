"""Protobuf contracts generated from ``proto/`` at build (``scripts/gen_contracts.py``).

``lmsd.contracts.v1`` holds the generated modules (``envelope_pb2`` …); they are not committed.
"""
