// The reviewer's page: sign in, the queue, one bundle, decisions and keyboard shortcuts.
import { api, describe, key } from "./api.js";
import { h, queueItem, rawJson, resultCard, reviewText, summary } from "./views.js";

const $ = (id) => document.getElementById(id);
const state = { decided: false, config: "", cursors: [null], page: 0, items: [], next: null, index: 0, open: null, busy: false, configs: new Map() };

function show(section) {
  for (const id of ["login", "queue", "bundle"]) $(id).hidden = id !== section;
  for (const id of ["forget", "help-open"]) $(id).hidden = section === "login";
}
const say = (text) => { $("status").textContent = text; };
function alarm(text) { $("alert").hidden = !text; $("alert").textContent = text || ""; }
const configName = (id) => state.configs.get(id)?.name || id;

function fail(error) {
  alarm(describe(error));
  if (error.status === 401) { key.forget(); show("login"); $("key").focus(); }
}

async function signIn() {
  alarm("");
  try {
    const configs = await api.configs();
    state.configs = new Map(configs.map((c) => [c.id, c]));
    $("config").replaceChildren(h("option", { value: "" }, "All configs"), ...configs.map((c) => h("option", { value: c.id }, c.name)));
    $("who").textContent = "Signed in; the key is kept in this tab only.";
    await loadQueue();
    $("runs").querySelector("a")?.focus();
  } catch (error) { fail(error); }
}

async function loadQueue() {
  const page = await api.queue({ decided: state.decided, config: state.config, cursor: state.cursors[state.page] });
  performance.mark("queue-api-answered");
  state.items = page.data;
  state.next = page.pagination.next_cursor;
  state.index = Math.min(state.index, Math.max(page.data.length - 1, 0));
  renderQueue(page.pagination.total);
  void document.body.offsetHeight;  // layout included in the measure
  performance.measure("queue-render", "queue-api-answered");
  requestAnimationFrame(() => performance.measure("queue-render-frame", "queue-api-answered"));
  return page;
}

function renderQueue(total) {
  show("queue");
  const what = state.decided ? "already decided" : "left to review";
  $("count").textContent = `${total} bundle${total === 1 ? "" : "s"} ${what}${state.config ? " for “" + configName(state.config) + "”" : ""}; page ${state.page + 1}.`;
  $("runs").replaceChildren(...state.items.map((run, i) => queueItem(run, configName(run.package_config_id), i === state.index, openBundle)));
  if (!state.items.length) $("runs").append(h("li", {}, state.decided ? "No decided bundles." : "Nothing left to review. 🎉"));
  $("prev-page").disabled = state.page === 0;
  $("next-page").disabled = !state.next;
}

function select(delta) {
  if (!state.items.length) return;
  state.index = Math.max(0, Math.min(state.items.length - 1, state.index + delta));
  if (!$("bundle").hidden) { void openBundle(state.items[state.index].id); return; }
  $("runs").querySelectorAll("li.run").forEach((li, i) => {
    li.classList.toggle("selected", i === state.index);
    li.toggleAttribute("aria-current", i === state.index);
    li.querySelector(".marker").textContent = i === state.index ? "▶" : "";
  });
  $("runs").querySelectorAll("a")[state.index]?.focus();
}

async function loadBundle(id) {
  const { data: run, etag } = await api.run(id);
  if (!state.configs.has(run.package_config_id)) state.configs.set(run.package_config_id, await api.packageConfig(run.package_config_id));
  const slots = await Promise.all(run.document_results.filter((s) => s.matching_run_id).map(async (slot) => {
    const page = await api.results(slot.matching_run_id);
    const etags = await Promise.all(page.data.map((r) => api.result(slot.matching_run_id, r.id)));
    return { slot, page, results: etags.map((r) => r.data), etags: etags.map((r) => r.etag) };
  }));
  return { run, etag, slots };
}

async function openBundle(id, { keepNotes = false } = {}) {
  const index = state.items.findIndex((r) => r.id === id);
  if (index >= 0) state.index = index;
  try {
    const notes = $("notes").value;
    state.open = await loadBundle(id);
    renderBundle(keepNotes ? notes : "");
    $("bundle-title").focus();
  } catch (error) { fail(error); }
}

function renderBundle(notes) {
  const { run, slots } = state.open;
  show("bundle");
  $("bundle-title").textContent = `Bundle ${run.id} (${state.index + 1} of ${state.items.length} on this page)`;
  $("bundle-summary").replaceChildren(summary(run, state.configs.get(run.package_config_id)), rawJson("the run", run.links.self, run));
  $("current-decision").textContent = reviewText(run.review);
  $("notes").value = notes;
  $("slots").replaceChildren(...slots.map(({ slot, page, results, etags }) => h("section", { class: "slot", "aria-label": `Slot ${slot.document_type}` },
    h("h3", {}, `${slot.document_type} — ${slot.status} (${slot.presence}), matching run ${slot.matching_run_id}`),
    page.pagination.total > results.length ? h("p", { class: "help" }, `Showing ${results.length} of ${page.pagination.total} rows.`) : null,
    results.map((r, i) => resultCard(r, (result, status, ref) => decideResult(slot, result, etags[i], status, ref))),
    rawJson(`results of ${slot.document_type}`, `/v1/matching/runs/${slot.matching_run_id}/results`, page))));
}

async function decideBundle(decision) {
  if (!state.open || state.busy) return;  // one decision at a time: a double press is not a second one
  const { run, etag } = state.open;
  const notes = $("notes").value.trim() || undefined;
  alarm("");
  state.busy = true;
  try {
    await api.reviewRun(run.id, decision, notes, etag);
    say(`${decision === "approved" ? "Approved" : "Rejected"} ${run.id}.`);
    await nextUndecided(run.id);
  } catch (error) {
    fail(error);
    if (error.status === 412) await openBundle(run.id, { keepNotes: true }).then(() => alarm(describe(error)));
  } finally { state.busy = false; }
}

async function nextUndecided(decidedId) {
  const at = state.index + (state.decided ? 1 : 0);
  state.index = at;
  await loadQueue();
  const next = state.items.find((r, i) => i >= Math.min(at, state.items.length - 1) && r.id !== decidedId);
  if (next) await openBundle(next.id);
  else { show("queue"); $("main").focus(); }
}

async function decideResult(slot, result, etag, status, referenceRowId) {
  if (state.busy) return;
  const body = { status, notes: $("notes").value.trim() || undefined, reference_row_id: referenceRowId || undefined };
  alarm("");
  state.busy = true;
  try {
    await api.reviewResult(slot.matching_run_id, result.id, body, etag);
    await openBundle(state.open.run.id, { keepNotes: true });
    // Said once the bundle shows the decision and takes the next one (a press while reloading is ignored).
    say(`Row ${result.document_id}: ${status}${referenceRowId ? " " + referenceRowId : ""}.`);
  } catch (error) {
    fail(error);
    if (error.status === 412) await openBundle(state.open.run.id, { keepNotes: true }).then(() => alarm(describe(error)));
  } finally { state.busy = false; }
}

const KEYS = {
  j: () => select(1), k: () => select(-1), "?": () => $("help").showModal(),
  a: () => !$("bundle").hidden && decideBundle("approved"),
  r: () => !$("bundle").hidden && decideBundle("rejected"),
  n: () => !$("bundle").hidden && $("notes").focus(),
  Escape: () => !$("bundle").hidden && backToQueue(),
  Enter: () => !$("queue").hidden && state.items[state.index] && openBundle(state.items[state.index].id),
};

function onKey(event) {
  if ($("help").open || event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target.closest("input, textarea, select");
  if (typing) { if (event.key === "Escape") event.target.blur(); return; }
  if (event.key === "Enter" && event.target.closest("a, button")) return;
  const action = KEYS[event.key];
  if (action && $("login").hidden) { event.preventDefault(); action(); }
}

async function backToQueue() {
  try { await loadQueue(); $("runs").querySelectorAll("a")[state.index]?.focus(); } catch (error) { fail(error); }
}

function reload(reset) { return () => { if (reset) { state.cursors = [null]; state.page = 0; state.index = 0; } backToQueue(); }; }

function wire() {
  $("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); key.set($("key").value.trim()); $("key").value = ""; signIn(); });
  $("forget").addEventListener("click", () => { key.forget(); state.open = null; show("login"); $("key").focus(); });
  $("help-open").addEventListener("click", () => $("help").showModal());
  $("back").addEventListener("click", backToQueue);
  $("approve").addEventListener("click", () => decideBundle("approved"));
  $("reject").addEventListener("click", () => decideBundle("rejected"));
  $("filters").addEventListener("change", () => {
    state.decided = $("filters").elements.view.value === "decided";
    state.config = $("config").value;
    reload(true)();
  });
  $("next-page").addEventListener("click", () => { state.cursors[++state.page] = state.next; state.index = 0; backToQueue(); });
  $("prev-page").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); state.index = 0; backToQueue(); });
  document.addEventListener("keydown", onKey);
}

wire();
if (key.get()) signIn(); else { show("login"); $("key").focus(); }
