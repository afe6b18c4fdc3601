// Graylane admin UI: small progressive enhancements. Every page works without this file;
// with it, destructive actions confirm in a dialog, filters apply as they change, and the
// ramp page follows the controller live.
(() => {
  "use strict";
  document.documentElement.classList.add("js");

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  // --- confirmation dialog -----------------------------------------------------------------
  const dialog = $("#confirm-dialog");
  let pending = null;

  function hidden(form, name, value) {
    let input = form.querySelector(`input[type="hidden"][name="${name}"]`);
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }

  function openConfirm(form) {
    pending = form;
    const danger = "confirmDanger" in form.dataset;
    const required = "reasonRequired" in form.dataset;
    $("#confirm-title").textContent = form.dataset.confirm;
    $("#confirm-body").textContent = form.dataset.confirmBody || "";
    const ok = $("#confirm-ok");
    ok.textContent = form.dataset.confirmLabel || "Confirm";
    ok.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
    const reason = $("#confirm-reason");
    reason.value = "";
    reason.required = required;
    $("#confirm-reason-hint").textContent = required
      ? "required · recorded in the audit log"
      : "optional · recorded in the audit log";
    $("#confirm-reason-error").hidden = true;
    dialog.returnValue = "";
    dialog.showModal();
    (required ? reason : danger ? $("#confirm-cancel") : ok).focus();
  }

  if (dialog) {
    document.addEventListener("submit", (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
      if (form.dataset.confirmed === "yes") return;
      event.preventDefault();
      openConfirm(form);
    });
    $("#confirm-ok").addEventListener("click", (event) => {
      const reason = $("#confirm-reason");
      if (reason.required && !reason.value.trim()) {
        event.preventDefault();
        $("#confirm-reason-error").hidden = false;
        reason.focus();
      }
    });
    dialog.addEventListener("close", () => {
      const form = pending;
      pending = null;
      if (!form || dialog.returnValue !== "ok" || !form.isConnected) return;
      hidden(form, "confirmed", "yes");
      hidden(form, "reason", $("#confirm-reason").value.trim());
      form.dataset.confirmed = "yes";
      $$("button", form).forEach((button) => { button.disabled = true; });
      form.submit();
    });
  }

  // --- filters apply as they change; "/" jumps to search ------------------------------------
  $$("form[data-autosubmit]").forEach((form) => {
    form.addEventListener("change", (event) => {
      if (event.target.matches("select, input[type=checkbox]")) form.requestSubmit();
    });
  });
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey) {
      const search = $("[data-shortcut='/']");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.matches("[data-submit-shortcut]")) {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
    if (event.key === "Escape") {
      $$("details[data-menu][open]").forEach((menu) => {
        menu.open = false;
        $("summary", menu).focus();
      });
    }
  });
  document.addEventListener("click", (event) => {
    $$("details[data-menu][open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  // --- small things -------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    const dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) dismiss.parentElement.remove();

    const more = event.target.closest("[data-more]");
    if (more) {
      const table = more.previousElementSibling;
      $$("tbody.more", table).forEach((body) => { body.hidden = false; });
      more.remove();
    }

    const copy = event.target.closest("[data-copy]");
    if (copy) {
      const source = $(copy.dataset.copy);
      source.select();
      const done = () => {
        copy.lastChild.textContent = " Copied";
        setTimeout(() => { copy.lastChild.textContent = " Copy"; }, 2000);
      };
      if (navigator.clipboard) navigator.clipboard.writeText(source.value).then(done, () => {});
      else if (document.execCommand("copy")) done();
    }

    const problem = event.target.closest(".problem-path");
    if (problem) revealPath(problem.dataset.path || "");
  });

  // Put the cursor on the key a validation problem names, in the editor next to it.
  function revealPath(path) {
    const editor = $("textarea[data-editor]");
    if (!editor || !path) return;
    const text = editor.value;
    let at = 0;
    let found = null;
    for (const part of path.split(".")) {
      const key = part.replace(/\[\d+\]/g, "");
      if (!key) continue;
      const index = text.indexOf(`"${key}"`, at);
      if (index < 0) break;
      found = [index, index + key.length + 2];
      at = found[1];
    }
    editor.focus();
    if (found) {
      editor.setSelectionRange(found[0], found[1]);
      const line = text.slice(0, found[0]).split("\n").length;
      const height = parseFloat(getComputedStyle(editor).lineHeight) || 19;
      editor.scrollTop = Math.max(0, (line - 4) * height);
    }
  }

  // Fields shown only for one choice of a radio group (data-show-when="kind=string").
  $$("[data-show-when]").forEach((field) => {
    const [name, value] = field.dataset.showWhen.split("=");
    const form = field.closest("form");
    const update = () => {
      const checked = form.querySelector(`input[name="${name}"]:checked`);
      field.hidden = !checked || checked.value !== value;
    };
    form.addEventListener("change", update);
    update();
  });

  // --- the ramp page follows the controller ---------------------------------------------------
  const live = $("[data-poll]");
  if (live) {
    const url = live.dataset.poll;
    const every = Number(live.dataset.interval) || 3000;
    const indicator = $("#live-indicator");
    let last = null;

    const swap = (html) => {
      const focused = document.activeElement;
      const focusId = focused && live.contains(focused) ? focused.id : null;
      live.innerHTML = html;
      if (focusId) {
        const again = document.getElementById(focusId);
        if (again) again.focus();
      }
    };

    const tick = async () => {
      if (!document.hidden && !(dialog && dialog.open)) {
        try {
          const response = await fetch(url, {
            headers: { Accept: "application/json" },
            credentials: "same-origin",
            cache: "no-store",
          });
          if (response.status === 401) {
            window.location.assign(`/ui/login?next=${encodeURIComponent(window.location.pathname)}`);
            return;
          }
          if (response.ok) {
            const data = await response.json();
            if (data.html && data.html !== last) {
              swap(data.html);
              last = data.html;
            }
            live.dataset.status = data.status;
            if (indicator) indicator.classList.remove("offline");
          } else if (indicator) indicator.classList.add("offline");
        } catch (error) {
          if (indicator) indicator.classList.add("offline");
        }
      }
      setTimeout(tick, every);
    };
    setTimeout(tick, every);
  }
})();
