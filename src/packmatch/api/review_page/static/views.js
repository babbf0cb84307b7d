// DOM rendering; values go in as text nodes only (never innerHTML), so nothing a run holds can run.
import { charDiff, difference, slotOutcome, worst } from "./evidence.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (name === "class") el.className = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

const when = (ts) => (ts ? ts.replace("T", " ").replace(/\.\d+Z$/, " UTC") : "—");
const conf = (c) => (c == null ? "—" : c.toFixed(4));

export function reviewText(review) {
  if (!review) return "Not decided yet.";
  const who = review.reviewed_by?.name || review.reviewed_by?.key_id;
  const notes = review.notes ? ` — “${review.notes}”` : "";
  return `${review.decision === "approved" ? "✓ Approved" : "✗ Rejected"} by ${who} at ${when(review.reviewed_at)}${notes}`;
}

function slotBadges(run) {
  return run.document_results.map((s) => `${s.document_type}: ${s.status}${s.confidence == null ? "" : " " + s.confidence.toFixed(2)}`).join(" · ");
}

export function queueItem(run, configName, selected, onOpen) {
  const decided = run.review ? ` · ${run.review.decision}` : "";
  return h("li", { class: selected ? "run selected" : "run", "aria-current": selected ? "true" : false },
    h("a", { href: `#${run.id}`, "data-id": run.id, onclick: (ev) => { ev.preventDefault(); onOpen(run.id); } },
      h("span", { class: "marker", "aria-hidden": "true" }, selected ? "▶" : ""),
      h("span", { class: "rid" }, run.id),
      h("span", { class: "meta" }, `${configName} · ${run.status}${decided} · ${when(run.created_at)}`),
      h("span", { class: "slots" }, slotBadges(run))));
}

export function summary(run, config) {
  const rows = run.document_results.map((slot) => {
    const [outcome, why] = slotOutcome(slot, config.pass_criteria);
    return { slot, outcome, why };
  });
  const verdict = worst(rows.map((r) => r.outcome));
  return h("div", {},
    h("p", {}, `Config “${config.name}” (${config.id}, version ${config.version}) · submitted ${when(run.created_at)} · machine verdict `,
      h("strong", { class: `verdict ${run.status}` }, run.status)),
    h("p", { class: "help" }, `The run takes the worst slot outcome (error > failed > review > passed): here ${verdict}. `
      + `Pass criteria: all_required_matched=${config.pass_criteria.all_required_matched}, `
      + `min_confidence=${config.pass_criteria.min_confidence}, allow_review_on_expected=${config.pass_criteria.allow_review_on_expected}.`),
    h("div", { class: "scroll" }, h("table", { class: "outcomes" },
      h("caption", {}, "Slots and why they led to the verdict"),
      h("thead", {}, h("tr", {}, ["Slot", "Presence", "Status", "Confidence", "Outcome", "Why"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map(({ slot, outcome, why }) => h("tr", {},
        h("th", { scope: "row" }, slot.document_type), h("td", {}, slot.presence), h("td", {}, slot.status),
        h("td", { class: "num" }, conf(slot.confidence)),
        h("td", {}, h("span", { class: `verdict ${outcome}` }, outcome)), h("td", {}, why)))))));
}

function diffNodes(reference, input) {
  if (reference == null || reference === "") return [h("em", {}, "(empty)")];
  return charDiff(reference, input).segments.map((s) => (s.same ? s.text : h("mark", { title: "differs" }, s.text)));
}

function evidenceCell(candidate, field) {
  const e = candidate.evidence[field];
  if (!e) return h("td", {}, "—");
  const same = e.score === 1;
  const shown = ["exact", "fuzzy"].includes(e.strategy) ? diffNodes(e.reference_value, e.source_value) : [String(e.reference_value ?? "")];
  return h("td", { class: same ? "same" : "differs" },
    h("span", { class: "value" }, shown),
    h("span", { class: "score" }, `${same ? "=" : "≠"} ${e.score.toFixed(4)} · ${difference(e)}`));
}

export function resultCard(result, onDecide) {
  const candidates = result.candidates.slice(0, 5);
  const fields = Object.keys(candidates[0]?.evidence || {});
  const firstEvidence = (f) => candidates[0].evidence[f];
  const review = result.review || { status: "pending" };
  const label = `${result.document_id}${result.extraction_row_id ? " / " + result.extraction_row_id : ""}`;
  return h("article", { class: "result", "aria-label": `Input row ${label}` },
    h("h4", {}, `Row ${label} — ${result.matched ? "matched" : "unmatched"} ${conf(result.confidence)}`),
    h("p", { class: "review-status" }, `Row review: ${review.status}${review.reference_row_id ? " (" + review.reference_row_id + ")" : ""}`
      + (review.reviewed_by ? ` by ${review.reviewed_by.name || review.reviewed_by.key_id}` : "")),
    candidates.length === 0 ? h("p", {}, "No candidate scored above 0.") : h("div", { class: "scroll" }, h("table", { class: "evidence" },
      h("caption", {}, `Input values beside the top ${candidates.length} candidates (marked characters differ from the input)`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Strategy"), h("th", { scope: "col" }, "Input value"),
        candidates.map((c, i) => h("th", { scope: "col" }, `#${i + 1} ${c.reference_row_id} (${conf(c.confidence)})`,
          h("button", { type: "button", class: "small approve", onclick: () => onDecide(result, "approved", c.reference_row_id) }, `Approve ${c.reference_row_id}`))))),
      h("tbody", {}, fields.map((f) => h("tr", {},
        h("th", { scope: "row" }, f), h("td", {}, firstEvidence(f).strategy), h("td", { class: "input" }, String(firstEvidence(f).source_value ?? "")),
        candidates.map((c) => evidenceCell(c, f))))))),
    h("button", { type: "button", class: "small reject", onclick: () => onDecide(result, "rejected", null) }, `Reject result for ${label}`));
}

export function rawJson(title, path, value) {
  return h("details", { class: "raw" }, h("summary", {}, `Raw JSON: ${title}`),
    h("p", {}, h("code", {}, `GET ${path}`)), h("pre", {}, JSON.stringify(value, null, 2)));
}
