"""Check the protobuf contracts in proto/ against the released lock (proto/released.lock.json).

A released field keeps its name, number, type and label (singular, optional, repeated or the
oneof it belongs to); a removed one leaves its number in a `reserved` statement; a released
number is never given to another field, and a reserved number stays reserved. Enum values
follow the same rule. New fields, messages and enums are always allowed.

    python proto/check_compat.py            # exit 1 and one line per problem if incompatible
    python proto/check_compat.py --update   # when releasing: rewrite the lock from proto/

Needs grpcio-tools (its bundled protoc). See docs/contracts.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

HERE = Path(__file__).resolve().parent
F = descriptor_pb2.FieldDescriptorProto

ENTRY = {"message": "fields", "enum": "values"}  # where a lock entry keeps its numbered members


def compile_protos(root: Path) -> descriptor_pb2.FileDescriptorSet:
    """Every .proto under `root` (the include root), compiled by grpcio-tools' protoc."""
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{root}", f"-I{include}", f"--descriptor_set_out={out}", *files]
        if not files or protoc.main(args) != 0:
            raise SystemExit(f"error: protoc failed on {root}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _field(msg: descriptor_pb2.DescriptorProto, f: descriptor_pb2.FieldDescriptorProto, syntax: str) -> dict:
    kind = F.Type.Name(f.type).removeprefix("TYPE_").lower()
    type_ = f.type_name.lstrip(".") if f.type in (F.TYPE_MESSAGE, F.TYPE_ENUM) else kind
    if f.label == F.LABEL_REPEATED:
        label = "repeated"
    elif f.proto3_optional:
        label = "optional"
    elif f.HasField("oneof_index"):
        label = f"oneof {msg.oneof_decl[f.oneof_index].name}"
    elif f.label == F.LABEL_REQUIRED:
        label = "required"
    else:
        label = "singular" if syntax == "proto3" else "optional"
    return {"number": f.number, "type": type_, "label": label}


def snapshot(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, Any]:
    """The lock document: every message's fields and every enum's values, by full name."""
    messages: dict[str, Any] = {}
    enums: dict[str, Any] = {}

    def add_enum(prefix: str, e: descriptor_pb2.EnumDescriptorProto, file: str) -> None:
        enums[f"{prefix}.{e.name}"] = {
            "file": file,
            "values": {v.name: {"number": v.number} for v in e.value},
            "reserved": [[r.start, r.end] for r in e.reserved_range],  # inclusive already
            "reserved_names": list(e.reserved_name),
        }

    def add_message(prefix: str, m: descriptor_pb2.DescriptorProto, file: str, syntax: str) -> None:
        name = f"{prefix}.{m.name}"
        messages[name] = {
            "file": file,
            "fields": {f.name: _field(m, f, syntax) for f in m.field},
            "reserved": [[r.start, r.end - 1] for r in m.reserved_range],  # end-exclusive
            "reserved_names": list(m.reserved_name),
        }
        for nested in m.nested_type:
            add_message(name, nested, file, syntax)
        for e in m.enum_type:
            add_enum(name, e, file)

    for fd in sorted(fds.file, key=lambda fd: fd.name):
        syntax = fd.syntax or "proto2"
        for m in fd.message_type:
            add_message(fd.package, m, fd.name, syntax)
        for e in fd.enum_type:
            add_enum(fd.package, e, fd.name)
    return {
        "comment": "Released protobuf contracts; written by proto/check_compat.py --update, do not edit.",
        "messages": messages,
        "enums": enums,
    }


def _compare(kind: str, owner: str, old: dict[str, Any], new: dict[str, Any] | None) -> list[str]:
    if new is None:
        return [f"{owner}: released {kind} removed or renamed"]
    problems = []
    entries, old_entries = new[ENTRY[kind]], old[ENTRY[kind]]
    reserved = {n for a, b in new["reserved"] for n in range(a, b + 1)}
    by_number: dict[int, list[str]] = {}
    for name, entry in entries.items():
        by_number.setdefault(entry["number"], []).append(name)
    for name, was in old_entries.items():
        number, now = was["number"], entries.get(name)
        where = f"{owner}.{name} ({number})"
        users = [n for n in by_number.get(number, []) if n != name]
        if now is None and not users and number not in reserved:
            problems.append(f"{where}: removed without reserving its number (add `reserved {number};`)")
        if users:
            problems.append(f"{where}: number {number} reused by {', '.join(users)} (never reuse a number)")
        if now is None:
            continue
        if now["number"] != number:
            problems.append(f"{where}: number changed from {number} to {now['number']}")
        for key in ("type", "label"):
            if key in was and now.get(key) != was[key]:
                problems.append(f"{where}: {key} changed from {was[key]} to {now.get(key)}")
    for a, b in old["reserved"]:
        lost = [n for n in range(a, b + 1) if n not in reserved]
        if lost:
            problems.append(f"{owner}: reserved number(s) {_ranges(lost)} no longer reserved")
    for name in sorted(set(old["reserved_names"]) - set(new["reserved_names"])):
        problems.append(f'{owner}: reserved name "{name}" no longer reserved')
    return problems


def _ranges(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:5]) + (", …" if len(numbers) > 5 else "")


def check(lock: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One line per incompatibility of `current` with the released `lock`."""
    problems = []
    for kind, section in (("message", "messages"), ("enum", "enums")):
        for owner, old in lock.get(section, {}).items():
            problems += _compare(kind, owner, old, current[section].get(owner))
    return problems


def dump(doc: dict[str, Any]) -> str:
    """JSON with one line per field, enum value and reserved list (readable diffs)."""
    inline: dict[str, str] = {}

    def one_line(value: Any) -> str:
        key = f"@{len(inline)}@"
        inline[f'"{key}"'] = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        return key

    shaped = {**doc}
    for section, members in (("messages", "fields"), ("enums", "values")):
        shaped[section] = {
            name: {
                **entry,
                members: {k: one_line(v) for k, v in entry[members].items()},
                "reserved": one_line(entry["reserved"]),
                "reserved_names": one_line(entry["reserved_names"]),
            }
            for name, entry in doc[section].items()
        }
    text = json.dumps(shaped, indent=2, ensure_ascii=False)
    return re.sub(r'"@\d+@"', lambda m: inline[m.group(0)], text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=HERE, help="proto include root (default: proto/)")
    parser.add_argument("--lock", type=Path, default=HERE / "released.lock.json")
    parser.add_argument("--update", action="store_true", help="rewrite the lock from the current protos")
    parser.add_argument("--force", action="store_true", help="with --update: even if incompatible")
    args = parser.parse_args(argv)

    current = snapshot(compile_protos(args.root.resolve()))
    if not args.lock.exists() and not args.update:
        print(f"error: no lock file {args.lock} (create it with --update)", file=sys.stderr)
        return 2
    lock = json.loads(args.lock.read_text(encoding="utf-8")) if args.lock.exists() else {}
    problems = check(lock, current)
    for line in problems:
        print(line)
    if args.update and (not problems or args.force):
        args.lock.write_text(dump(current), encoding="utf-8")
        print(f"wrote {args.lock} ({len(current['messages'])} messages, {len(current['enums'])} enums)")
        return 0
    if problems:
        hint = " (lock not updated; --force overrides)" if args.update else ""
        print(f"{len(problems)} incompatible change(s) against {args.lock.name}{hint}", file=sys.stderr)
        return 1
    print(f"ok: compatible with {args.lock.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
