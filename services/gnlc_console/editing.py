"""What the create and edit pages share: reading a form, sending it, and showing the
API's refusals in place with what was typed."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from gnlc_console.backend import Answer
from gnlc_console.forms import Errors, Values, field_errors, languages_of, merged
from gnlc_core.errors import message_of


async def form_values(request: Request) -> Values:
    form = await request.form()
    values: Values = {k: v for k, v in form.items() if isinstance(v, str) and k != "regions"}
    values["regions"] = [v for v in form.getlist("regions") if isinstance(v, str)]
    return values


def refusal_errors(answer: Answer, values: Values) -> Errors:
    """The API's refusal on the fields (a 409 about the id on the id, any other on the
    form)."""
    if answer.status == 422:
        return field_errors(answer.errors(), languages_of(values))
    message = answer.errors()[0]["msg"]
    if answer.status == 409 and message.startswith("id:"):
        return {"id": [message.removeprefix("id:").strip()]}
    return {"": [message]}


def saved_notes(answer: dict[str, Any]) -> list[str]:
    """The lines of a save's answer worth reading: languages without a text of their own,
    and the steps not scheduled, by reason."""
    notes = [f"warning: {w}" for w in answer.get("warnings") or []]
    for step in answer.get("not_scheduled") or []:
        notes.append(
            f"{step['city_id']}: {step['step']} not scheduled ({step['reason']}): {step['detail']}"
        )
    return notes


def all_errors(
    model: type[BaseModel], payload: dict[str, Any], local: Errors, values: Values
) -> Errors:
    """With the console's own findings, what the API's model would say of the rest (checked
    here: nothing is sent while any field is wrong), so every error shows at once."""
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        remote = field_errors(
            [{"loc": e["loc"], "msg": message_of(e)} for e in exc.errors()], languages_of(values)
        )
        return merged(local, remote)
    return local
