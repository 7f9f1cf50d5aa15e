"""Dagster Config and resource classes derived from the project's config schema.

A stage's thresholds are declared once, in `dagster_project.config`; these helpers turn a chosen
set of those fields into a `dg.Config` (shown in the Launchpad, recorded in each run's config)
or a `dg.ConfigurableResource`, with the loaded values as defaults and the schema's descriptions.
Values given in the Launchpad are validated by the schema's own model when a step reads them.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any

import dagster as dg
from pydantic import BaseModel, Field, ValidationError, create_model

from dagster_project.config import SettingsError


def _dagster_type(annotation: Any) -> Any:
    """Nested models become plain tables in Dagster config; the schema validates them on use."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict[str, Any]
    if typing.get_origin(annotation) is list:
        (inner,) = typing.get_args(annotation) or (Any,)
        return list[_dagster_type(inner)]
    return annotation


def _fields(model: type[BaseModel], values: BaseModel, names: Iterable[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        info = model.model_fields[name]
        default = getattr(values, name)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        elif isinstance(default, list):
            default = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in default]
        out[name] = (_dagster_type(info.annotation), Field(default=default, description=info.description))
    return out


def validated(model: type[BaseModel], values: dict[str, Any], what: str) -> BaseModel:
    """`model` built from `values`, a ValidationError as one SettingsError line."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SettingsError(f"{what}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def derived_config(name: str, model: type[BaseModel], values: BaseModel, names: Iterable[str],
                   doc: str) -> type[dg.Config]:
    """A `dg.Config` with `names` from `model`, defaulting to `values`."""
    cls = create_model(name, __base__=dg.Config, __doc__=doc, **_fields(model, values, names))
    return cls


def derived_resource(name: str, model: type[BaseModel], values: BaseModel, doc: str,
                     exclude: Iterable[str] = ()) -> type[dg.ConfigurableResource]:
    """A `dg.ConfigurableResource` whose fields are `model`'s (minus `exclude`), defaulting to
    `values`; `.settings()` gives the validated `model` instance."""
    names = [n for n in model.model_fields if n not in set(exclude)]

    def settings(self) -> BaseModel:
        fixed = {n: getattr(values, n) for n in model.model_fields if n not in names}
        return validated(model, {**fixed, **{n: getattr(self, n) for n in names}}, f"resource {name}")

    cls = create_model(name, __base__=dg.ConfigurableResource, __doc__=doc, **_fields(model, values, names))
    cls.settings = settings
    return cls
