"""The constraints msgspec enforces on a wire shape, written into the schema Litestar made of it.

Litestar's generator reads ``msgspec.Meta`` only partly: a bound that is zero (``ge=0``) is taken
for "no bound", the constraints of list items (``list[Annotated[str, Meta(min_length=1)]]``) and of
dict keys (``dict[uuid.UUID, int]``) are left out. msgspec decodes the request body, so its own
description of each type (``msgspec.inspect``) is the truth: walk it beside Litestar's schema
and add every constraint the schema lacks. A rule for every shape, not a list of fields.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

i = msgspec.inspect

# msgspec's name of a constraint -> Litestar Schema's attribute, by kind of type
_NUMBER = {"ge": "minimum", "le": "maximum", "gt": "exclusive_minimum", "lt": "exclusive_maximum",
           "multiple_of": "multiple_of"}
_TEXT = {"min_length": "min_length", "max_length": "max_length", "pattern": "pattern"}
_ARRAY = {"min_length": "min_items", "max_length": "max_items"}
_OBJECT = {"min_length": "min_properties", "max_length": "max_properties"}
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def add_struct_constraints(schema: Schema, struct: type[msgspec.Struct]) -> None:
    """Complete ``schema`` (Litestar's component for ``struct``) from msgspec's view of it."""
    _walk(schema, i.type_info(struct))


def _alternatives(schema: Schema) -> list[Schema]:
    """The non-null alternatives of a ``oneOf``/``anyOf`` schema, or the schema itself."""
    options = schema.one_of or schema.any_of
    if not options:
        return [schema]
    return [s for s in options if isinstance(s, Schema) and s.type != OpenAPIType.NULL]


def _set(schema: Schema, info: Any, names: dict[str, str]) -> None:
    for ours, theirs in names.items():
        value = getattr(info, ours, None)
        if value is not None and getattr(schema, theirs, None) is None:
            setattr(schema, theirs, value)


def _walk(schema: Any, info: Any) -> None:
    if not isinstance(schema, Schema):
        return  # a $ref: the referenced component is completed on its own
    if isinstance(info, i.Metadata):
        info = info.type
    if isinstance(info, i.UnionType):
        kinds = [t for t in info.types if not isinstance(t, i.NoneType)]
        alternatives = _alternatives(schema)
        if len(kinds) == len(alternatives):
            for alternative, kind in zip(alternatives, kinds, strict=True):
                _walk(alternative, kind)
        return
    if schema.one_of or schema.any_of:  # `X | Unset` arrives as a one-way oneOf
        alternatives = _alternatives(schema)
        if len(alternatives) == 1:
            _walk(alternatives[0], info)
        return
    if isinstance(info, i.IntType | i.FloatType):
        _set(schema, info, _NUMBER)
    elif isinstance(info, i.StrType):
        _set(schema, info, _TEXT)
    elif isinstance(info, i.ListType | i.SetType | i.FrozenSetType | i.VarTupleType):
        _set(schema, info, _ARRAY)
        if isinstance(schema.items, Schema):
            _walk(schema.items, info.item_type)
    elif isinstance(info, i.TupleType):  # a fixed-length array: exactly its items, each its own
        if schema.min_items is None and schema.max_items is None:
            schema.min_items = schema.max_items = len(info.item_types)
        for item, kind in zip(schema.prefix_items or (), info.item_types, strict=False):
            _walk(item, kind)
    elif isinstance(info, i.DictType):
        _set(schema, info, _OBJECT)
        if schema.property_names is None:
            schema.property_names = _key_schema(info.key_type)
        if isinstance(schema.additional_properties, Schema):
            _walk(schema.additional_properties, info.value_type)
    elif isinstance(info, i.StructType) and schema.properties:
        for field in info.fields:
            _walk(schema.properties.get(field.encode_name), field.type)


def _key_schema(key: Any) -> Schema | None:
    """What a JSON object's keys must be when msgspec decodes them as ``key``."""
    if isinstance(key, i.Metadata):
        key = key.type
    if isinstance(key, i.UUIDType):
        return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID, pattern=UUID_PATTERN)
    if isinstance(key, i.StrType) and (key.min_length or key.max_length or key.pattern):
        schema = Schema(type=OpenAPIType.STRING)
        _set(schema, key, _TEXT)
        return schema
    return None
