"""Kill switches: one flag off (or on again) in one environment, or the emergency stop of
everything in an environment. Both need the release manager role and a confirmation."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from graylane_server.environments import service as environments
from graylane_server.flags import service as flags
from graylane_server.models import utcnow
from graylane_server.ramps import emergency
from graylane_server.ui import forms
from graylane_server.ui.auth import PostedForm, ReleaseManagerPage

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.post("/flags/{key}/environments/{environment}/enabled")
def switch_flag(
    key: str, environment: str, *, form: PostedForm, page: ReleaseManagerPage
) -> Response:
    flags.get(page.session, key)
    environments.get(page.session, environment)
    enabled = form.get("enabled") == "true"
    back = forms.local_target(form.get("next"), f"/ui/flags/{key}?env={environment}")
    asked = page.confirm(
        form,
        title=f"{'Switch on' if enabled else 'Switch off'} {key} in {environment}?",
        message=(
            f"{key} serves its rules and rollout again in {environment}."
            if enabled
            else f"Everyone in {environment} gets {key}'s off variant at once."
        ),
        label="Switch on" if enabled else "Switch off",
        danger=not enabled,
        back=back,
    )
    if asked is not None:
        return asked
    _, changed = flags.set_enabled(
        page.session,
        actor=page.actor,
        key=key,
        environment=environment,
        enabled=enabled,
        reason=forms.text(form, "reason") or None,
    )
    state = "on" if enabled else "off"
    message = f"{key} is {state} in {environment}." if changed else f"{key} was already {state}."
    return page.done(back, message)


@router.post("/environments/{environment}/emergency-stop")
def stop_environment(environment: str, *, form: PostedForm, page: ReleaseManagerPage) -> Response:
    environments.get(page.session, environment)
    back = forms.local_target(form.get("next"), f"/ui/?env={environment}")
    asked = page.confirm(
        form,
        title=f"Emergency stop in {environment}?",
        message=f"Every flag in {environment} serves its off variant and every running ramp "
        "there pauses, at once. Say why: it goes in the audit log and to webhooks.",
        label="Stop everything",
        back=back,
        reason_required=True,
    )
    if asked is not None:
        return asked
    disabled, paused = emergency.stop(
        page.session,
        actor=page.actor,
        environment=environment,
        reason=forms.text(form, "reason"),
        now=utcnow(),
    )
    return page.done(
        back,
        f"Emergency stop in {environment}: {len(disabled)} flag(s) switched off, "
        f"{len(paused)} ramp(s) paused.",
    )
