"""The playground: evaluate one flag (with its trace) or every flag for a context, against
the snapshot this server serves SDKs in the chosen environment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

from graylane.core import explain, resolve
from graylane_server.deps import RuntimeDep
from graylane_server.ui import forms
from graylane_server.ui.auth import PostedForm, ViewerPage
from graylane_server.ui.pages import Page

router = APIRouter(prefix="/ui", include_in_schema=False)

DEFAULT_CONTEXT = (
    '{\n  "targetingKey": "user-123",\n  "email": "ana@example.com",\n  "plan": "pro"\n}'
)


def _playground(
    page: Page,
    runtime: RuntimeDep,
    *,
    flag: str,
    context_text: str,
    evaluate: bool,
    status: int = 200,
) -> HTMLResponse:
    env = page.chosen_environment()
    served = runtime.store.get(env.key) if env is not None else None
    keys = sorted(served.snapshot.flags) if served is not None else []
    error = None
    trace = None
    results: list[dict[str, Any]] = []
    if evaluate and served is not None:
        try:
            context = forms.context(context_text)
        except forms.FormError as exc:
            error = exc.message
        else:
            if flag:
                explanation = explain(served.snapshot, flag, context)
                if not explanation.found:
                    error = f"There is no flag {flag!r} in {env.key if env else ''}."
                else:
                    trace = explanation.to_dict()
                    results = [explanation.result.to_dict()]
            else:
                results = [resolve(served.snapshot, k, context).to_dict() for k in keys]
    return page.render(
        "playground.html",
        active="playground",
        environment=env,
        keys=keys,
        flag=flag,
        context_text=context_text,
        error=error,
        trace=trace,
        results=results,
        evaluated=evaluate and error is None,
        config_version=served.version if served is not None else None,
        status=422 if error else status,
    )


@router.get("/playground")
def playground(*, page: ViewerPage, runtime: RuntimeDep, flag: str = "") -> Response:
    return _playground(page, runtime, flag=flag, context_text=DEFAULT_CONTEXT, evaluate=False)


@router.post("/playground")
def evaluate_playground(*, form: PostedForm, page: ViewerPage, runtime: RuntimeDep) -> Response:
    return _playground(
        page,
        runtime,
        flag=forms.text(form, "flag"),
        context_text=form.get("context", ""),
        evaluate=True,
    )
