"""Strict validation of OCSF records against the official schema (the compiled schemas the PyPI package
`ocsf-json-schema` bundles, 1.0 to 1.8).

Two independent checks, both must find nothing:
- the package's Draft 2020-12 JSON Schema for the class with the record's profiles (types, patterns,
  enums, required attributes, at-least-one constraints; it closes every object but OCSF's free-form
  `object` with additionalProperties false, which `open_objects` checks);
- a walk of the record through the OCSF dictionary itself: no attribute the class or object does not
  define for the declared profiles, none deprecated, every enum's label (its `sibling`) the caption of
  its id (a data-source value only with 99 Other), no null and no empty string, object or list
  (free-form content, OCSF's `object` and `json_t`, is the producer's own and not walked)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSIONS = ("1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0", "1.7.0", "1.8.0")
FREE_FORM = {"object", "json_t"}  # OCSF types whose content is the producer's own
DEPRECATED = "deprecated"


@lru_cache(maxsize=None)
def _dictionary(version: str) -> dict:
    return get_ocsf_schema(version)


@lru_cache(maxsize=None)
def json_schema(version: str, class_name: str, profiles: tuple[str, ...]) -> dict:
    return OcsfJsonSchemaEmbedded(_dictionary(version)).get_class_schema(class_name, list(profiles))


@lru_cache(maxsize=None)
def _validator(version: str, class_name: str, profiles: tuple[str, ...]) -> Draft202012Validator:
    schema = json_schema(version, class_name, profiles)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def open_objects(schema: dict) -> list[str]:
    """The schema's objects that accept attributes they do not define (should be OCSF's `object` only)."""
    parts = {"(class)": schema, **schema.get("$defs", {})}
    return sorted(name for name, part in parts.items() if part.get("additionalProperties") is not False)


def _in_profiles(attribute: dict, profiles: tuple[str, ...]) -> bool:
    """Whether an attribute belongs to the record: no profile, or one of the declared ones
    (compiled schemas up to 1.7 say `profile`, 1.8 `profiles`)."""
    named = attribute.get("profiles") or ([attribute["profile"]] if attribute.get("profile") else [])
    return not named or any(p in profiles for p in named)


def _walk(value: Any, attributes: dict, path: str, version: str, profiles: tuple[str, ...]) -> list[str]:
    """The record's attributes through the OCSF dictionary of `version`, object by object."""
    errors: list[str] = []
    objects = _dictionary(version)["objects"]
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        attribute = attributes.get(key)
        if attribute is None or not _in_profiles(attribute, profiles):
            errors.append(f"{where}: not an attribute here (OCSF {version}, profiles {list(profiles)})")
            continue
        if "@deprecated" in attribute:
            errors.append(f"{where}: {DEPRECATED} in OCSF {version}")
        errors += _enum_label(value, key, attribute, where)
        if _blank(value[key]) or isinstance(value[key], list) and any(_blank(v) for v in value[key]):
            errors.append(f"{where}: empty ({value[key]!r})")
        kind = attribute.get("object_type") if attribute.get("type") == "object_t" else attribute.get("type")
        if kind in FREE_FORM:
            continue
        items = value[key] if isinstance(value[key], list) else [value[key]]
        for n, element in enumerate(items):
            at = f"{where}[{n}]" if isinstance(value[key], list) else where
            if attribute.get("type") == "object_t" and isinstance(element, dict):
                errors += _walk(element, objects[kind]["attributes"], at, version, profiles)
    return errors


def _enum_label(holder: dict, key: str, attribute: dict, where: str) -> list[str]:
    """An enum id's label must be its caption; with 99 (Other) it carries the source's own value."""
    sibling, enum = attribute.get("sibling"), attribute.get("enum")
    if not sibling or not enum or sibling not in holder:
        return []
    caption = enum.get(str(holder[key]), {}).get("caption")
    label = holder[sibling]
    if holder[key] == 99:
        return [] if isinstance(label, str) and label else [f"{where}: 99 (Other) needs its own label"]
    return [] if label == caption else [f"{where}={holder[key]}: label {label!r}, OCSF says {caption!r}"]


def _blank(value: Any) -> bool:
    """Null, or an empty string, object or list: says nothing (a tactic of {"name": ""})."""
    return value is None or value == "" or value == {} or value == []


def strict_errors(record: dict, version: str | None = None, deprecated: bool = False) -> list[str]:
    """Every way the record breaks OCSF (the version it declares unless another is given); [] when none.
    An attribute the version deprecates counts too, unless `deprecated` allows it (still valid, on its
    way out: for checking a record against versions after the one it declares)."""
    version = version or record["metadata"]["version"]
    profiles = tuple(sorted(record["metadata"].get("profiles", [])))
    dictionary = _dictionary(version)
    class_name = next(name for name, c in dictionary["classes"].items() if c.get("uid") == record["class_uid"])
    validator = _validator(version, class_name, profiles)
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '(record)'}: {e.message[:300]}"
              for e in validator.iter_errors(record)]
    errors += _walk(record, dictionary["classes"][class_name]["attributes"], "", version, profiles)
    return [e for e in errors if not (deprecated and f": {DEPRECATED} in OCSF" in e)]
