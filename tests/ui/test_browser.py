"""The admin UI in a real browser (Debian's chromium, driven by Playwright): what a
release manager does, and what a viewer may not."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.support.servers import LiveServer
from tests.ui.conftest import UserFactory, boolean_flag, log_in, plan

PageFactory = Callable[[], Any]


def confirm(page: Any, reason: str | None = None) -> None:
    """Answer the confirmation dialog a destructive button opens."""
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    if reason is not None:
        page.fill("#confirm-reason", reason)
    page.click("#confirm-ok")


def create_flag(page: Any, key: str) -> None:
    page.click("text=New flag")
    page.fill("input[name=key]", key)
    page.fill("input[name=description]", "The new checkout")
    page.fill("input[name=tags]", "checkout, payments")
    page.click("button:has-text('Create flag')")
    expect(page.locator("h1")).to_have_text(key)
    expect(page.locator(".flash")).to_contain_text(f"Created {key}")


def plan_and_start_ramp(page: Any) -> None:
    """From a flag's page in staging: plan a ramp and start it."""
    page.click("a:has-text('Plan a ramp') >> nth=1")
    expect(page).to_have_url(re.compile(r"/environments/staging/ramp$"))
    page.fill("input[name=stages]", "5, 25, 50, 100")
    page.fill("input[name=min_samples]", "500")
    page.click("button:has-text('Save plan')")
    expect(page.locator(".flash")).to_contain_text("Saved the ramp plan")
    page.click("#ramp-start")
    confirm(page, reason="first exposure")
    expect(page.locator(".flash")).to_contain_text("Started the ramp")
    expect(page.locator("#ramp-percentage")).to_have_text("5%")


def test_a_release_manager_ramps_a_flag_and_rolls_it_back(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    name = make_user("release_manager")
    page = new_page()
    log_in(page, name)
    expect(page.locator(".who strong")).to_have_text(name)

    # Given a new flag at 10% in staging, set on the flag page after confirming ...
    create_flag(page, "checkout-v2")
    page.goto("/ui/flags/checkout-v2?env=staging")
    page.fill("input[name=percentage]", "10")
    page.click("button:has-text('Set rollout')")
    confirm(page)
    expect(page.locator(".flash")).to_contain_text("now serves 10% of units in staging")
    staging = admin.get("/api/v1/flags/checkout-v2").json()["environments"]["staging"]
    assert staging["fallthrough"]["rollout"]["percentage"] == 10

    # ... when they plan a ramp, start it and advance it ...
    plan_and_start_ramp(page)
    page.click("#ramp-advance")
    confirm(page)
    expect(page.locator("#ramp-percentage")).to_have_text("25%")

    # ... the chart draws the stages and where the ramp stands.
    chart = page.locator("svg.chart-svg").first
    expect(chart).to_be_visible()
    expect(chart.locator("path.line.actual")).to_have_count(1)
    expect(chart.locator("path.line.planned")).to_have_count(1)
    for label in ("5%", "25%", "50%", "100%"):
        expect(chart.locator("text.ylabel", has_text=re.compile(f"^{label}$"))).to_have_count(1)
    expect(chart.locator(".current-label")).to_contain_text("25% · stage 2 of 4")
    expect(page.locator(".guard").first).to_contain_text("error_rate")

    # Rolling back asks first; cancelling changes nothing, confirming goes back to 0%.
    page.click("#ramp-rollback")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.click("#confirm-cancel")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(page.locator("#ramp-percentage")).to_have_text("25%")
    page.click("#ramp-rollback")
    confirm(page, reason="checkout errors")
    expect(page.locator("#ramp-percentage")).to_have_text("0%")
    expect(page.locator(".ramp-status")).to_contain_text("rolled back")
    expect(page.locator(".timeline").first).to_contain_text("ramp.rollback")

    # The audit log names the person.
    page.click("nav.nav >> text=Audit log")
    page.fill("input[name=actor]", f"user:{name}")
    page.fill("input[name=action]", "ramp.rollback")
    page.click("button:has-text('Filter')")
    entry = page.locator(".audit-entry").first
    expect(entry).to_contain_text("ramp.rollback")
    expect(entry).to_contain_text(f"user:{name}")
    expect(entry).to_contain_text("checkout errors")
    expect(entry.locator("table.diff")).to_contain_text("percentage")
    assert page.js_errors == []


def test_a_viewer_sees_disabled_buttons_and_a_forged_post_is_refused(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/viewer-ramp", json=boolean_flag(ramp=plan())).raise_for_status()
    assert admin.post("/api/v1/flags/viewer-ramp/environments/staging/ramp/start").is_success
    name = make_user("viewer")
    page = new_page()
    log_in(page, name)
    page.goto("/ui/flags/viewer-ramp/environments/staging/ramp")
    advance = page.locator("#ramp-advance")
    expect(advance).to_be_disabled()
    expect(advance).to_have_attribute("title", "needs the editor role")
    expect(page.locator("#ramp-rollback")).to_be_disabled()
    expect(page.locator("#emergency-stop")).to_be_disabled()

    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(
        "/ui/flags/viewer-ramp/environments/staging/ramp/advance",
        form={"csrf_token": token, "version": "1", "confirmed": "yes"},
        max_redirects=0,
    )
    assert forged.status == 403
    no_csrf = page.request.post(
        "/ui/flags/viewer-ramp/environments/staging/ramp/advance",
        form={"version": "1", "confirmed": "yes"},
        max_redirects=0,
    )
    assert no_csrf.status == 403
    assert (
        admin.get("/api/v1/flags/viewer-ramp/environments/staging/ramp").json()["percentage"] == 5
    )


def test_the_ramp_page_follows_the_controller_without_a_reload(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/live-ramp", json=boolean_flag(ramp=plan())).raise_for_status()
    assert admin.post("/api/v1/flags/live-ramp/environments/staging/ramp/start").is_success
    page = new_page()
    log_in(page, make_user("viewer"))
    page.goto("/ui/flags/live-ramp/environments/staging/ramp")
    expect(page.locator("#ramp-percentage")).to_have_text("5%")
    page.evaluate("window.stillTheSamePage = true")

    # Someone else (here a token; the controller writes the same way) advances it.
    version = admin.get("/api/v1/flags/live-ramp/environments/staging/ramp").json()["version"]
    moved = admin.post(
        "/api/v1/flags/live-ramp/environments/staging/ramp/advance",
        headers={"If-Match": f'"{version}"', "X-Graylane-Reason": "looks good"},
    )
    assert moved.status_code == 200, moved.text

    expect(page.locator("#ramp-percentage")).to_have_text("25%", timeout=10_000)
    expect(page.locator(".timeline").first).to_contain_text("ramp.advance")
    assert page.evaluate("window.stillTheSamePage") is True


def test_a_wrong_password_shows_an_error(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory
) -> None:
    name = make_user("viewer")
    page = new_page()
    page.goto("/ui/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "not-my-password")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_have_text(
        "Wrong username or password, or the account is disabled."
    )
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    expect(page.locator("input[name=username]")).to_have_value(name)


def test_the_kill_switch_asks_first_and_cancelling_keeps_the_flag_on(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/switchable", json=boolean_flag(percentage=20)).raise_for_status()
    page = new_page()
    log_in(page, make_user("release_manager"))
    page.goto("/ui/?env=staging")
    switch = page.locator("tr:has-text('switchable') button.switch")
    expect(switch).to_have_attribute("aria-checked", "true")

    switch.click()
    page.keyboard.press("Escape")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(switch).to_have_attribute("aria-checked", "true")

    switch.click()
    confirm(page, reason="bad deploy")
    expect(page.locator(".flash")).to_contain_text("switchable is off in staging")
    expect(page.locator("tr:has-text('switchable') button.switch")).to_have_attribute(
        "aria-checked", "false"
    )
    assert not admin.get("/api/v1/flags/switchable").json()["environments"]["staging"]["enabled"]


def test_the_editor_shows_problems_by_path_and_the_impact_before_saving(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/edited", json=boolean_flag(percentage=10)).raise_for_status()
    page = new_page()
    log_in(page, make_user("editor"))
    page.goto("/ui/flags/edited?env=staging")
    definition = admin.get("/api/v1/flags/edited").json()

    broken = dict(definition, off_variant="missing")
    page.fill("#definition", json.dumps(broken, indent=2))
    page.click("button:has-text('Review changes')")
    problems = page.locator("#problems")
    expect(problems).to_contain_text("off_variant")
    expect(page.locator("#save-definition")).to_have_count(0)

    staging = definition["environments"]["staging"]
    staging["fallthrough"]["rollout"]["percentage"] = 30
    page.fill("#definition", json.dumps(definition, indent=2))
    page.click("button:has-text('Review changes')")
    review = page.locator("#review")
    expect(review).to_contain_text("environments.staging.fallthrough.rollout.percentage")
    impact = review.locator("tr.changed", has_text="staging")
    expect(impact).to_contain_text("of 10,000 change answer")
    changed = int(impact.locator("strong").inner_text().replace(",", ""))
    assert 1700 < changed < 2300  # about 20% of the sample moves from off to on

    page.click("#save-definition")
    expect(page.locator(".flash")).to_contain_text("Saved edited as version 2")
    saved = admin.get("/api/v1/flags/edited").json()
    assert saved["environments"]["staging"]["fallthrough"]["rollout"]["percentage"] == 30


def test_the_playground_explains_an_answer(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    definition = boolean_flag(percentage=50)
    definition["environments"]["staging"]["rules"] = [
        {
            "name": "staff",
            "when": [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}],
            "serve": {"variant": "on"},
        }
    ]
    admin.put("/api/v1/flags/explained", json=definition).raise_for_status()
    page = new_page()
    log_in(page, make_user("viewer"))
    page.goto("/ui/playground?env=staging&flag=explained")
    page.fill("textarea[name=context]", '{"targetingKey": "u-1", "email": "ana@example.com"}')
    page.click("button:has-text('Evaluate')")
    result = page.locator(".result")
    expect(result).to_contain_text("TARGETING_MATCH")
    expect(result).to_contain_text("true")
    expect(page.locator(".trace")).to_contain_text("Rule staff matched")


def test_repeated_wrong_passwords_get_a_clear_429(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory
) -> None:
    name = make_user("viewer")
    page = new_page()
    for attempt in range(6):
        page.goto("/ui/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", f"wrong-{attempt}")
        with page.expect_response("**/ui/login") as answer:
            page.click("button[type=submit]")
        expected = 429 if attempt == 5 else 401
        assert answer.value.status == expected
    expect(page.locator("#login-error")).to_contain_text("Too many failed sign-ins")
    expect(page.locator("#login-error")).to_contain_text("try again")


def test_the_flag_list_works_from_the_keyboard(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    for key in ("kb-search", "kb-other"):
        admin.put(f"/api/v1/flags/{key}", json=boolean_flag()).raise_for_status()
    page = new_page()
    log_in(page, make_user("release_manager"))
    page.goto("/ui/?env=staging")
    page.keyboard.press("/")
    expect(page.locator("input[name=q]")).to_be_focused()
    page.keyboard.type("kb-sea")
    page.keyboard.press("Enter")
    expect(page.locator(".flags-table tbody tr")).to_have_count(1)
    expect(page.locator(".flags-table")).to_contain_text("kb-search")

    # The kill switch is a button: focus it, press Enter, and the dialog takes the focus.
    page.locator("button.switch").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert page.js_errors == []


def test_the_plan_form_edits_the_recommended_guard_pair_and_names_a_bad_field(
    server: LiveServer, make_user: UserFactory, new_page: PageFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/paired-ramp", json=boolean_flag()).raise_for_status()
    admin.put("/api/v1/flags/custom-ramp", json=boolean_flag(ramp=plan())).raise_for_status()
    page = new_page()
    log_in(page, make_user("editor"))

    # A new plan offers the recommended pair at its defaults ...
    page.goto("/ui/flags/paired-ramp/environments/staging/ramp")
    expect(page.locator("input[name=relative_max]")).to_have_value("1.5")
    expect(page.locator("input[name=error_rate_cap]")).to_have_value("20")

    # ... refuses a multiple of 1 with a 422 that names the field and keeps what was typed ...
    page.fill("input[name=relative_max]", "1")
    page.fill("input[name=min_samples]", "500")
    with page.expect_response(lambda r: r.url.endswith("/ramp/plan")) as answer:
        page.click("button:has-text('Save plan')")
    assert answer.value.status == 422
    expect(page.locator("#plan-error")).to_contain_text("Error rate vs unexposed: enter a multiple")
    expect(page.locator("input[name=relative_max]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("input[name=min_samples]")).to_have_value("500")
    assert "ramp" not in admin.get("/api/v1/flags/paired-ramp").json()["environments"]["staging"]

    # ... and stores the pair once the levels are right.
    page.fill("input[name=relative_max]", "2")
    page.fill("input[name=error_rate_cap]", "10")
    page.click("button:has-text('Save plan')")
    expect(page.locator(".flash")).to_contain_text("Saved the ramp plan")
    stored = admin.get("/api/v1/flags/paired-ramp").json()["environments"]["staging"]["ramp"]
    assert stored["guards"] == [
        {"kind": "relative", "metric": "error_rate", "max": 1.0},
        {"metric": "error_rate", "max": 0.1},
    ]
    assert stored["min_samples"] == 500
    expect(page.locator("input[name=relative_max]")).to_have_value("2")
    expect(page.locator("input[name=error_rate_cap]")).to_have_value("10")

    # Other guards are not in the form, and saving the plan keeps them as written.
    page.goto("/ui/flags/custom-ramp/environments/staging/ramp")
    page.click("summary:has-text('Edit plan')")
    expect(page.locator("#guards-in-definition")).to_contain_text("edited in the flag's definition")
    expect(page.locator("input[name=relative_max]")).to_have_count(0)
    page.fill("input[name=stages]", "5, 50, 100")
    page.click("button:has-text('Save plan')")
    expect(page.locator(".flash")).to_contain_text("Saved the ramp plan")
    custom = admin.get("/api/v1/flags/custom-ramp").json()["environments"]["staging"]["ramp"]
    assert custom["stages"] == [5, 50, 100]
    assert custom["guards"] == plan()["guards"]
    # the browser logs the refused save's 422, and nothing else
    assert [e for e in page.js_errors if "status of 422" not in e] == []
