// Pure helpers: the verdict rule of SPEC §5 in words, and what differs between two values.
const WORST = ["passed", "review", "failed", "error"];

export function slotOutcome(slot, criteria) {
  const { presence, status } = slot;
  const low = status === "matched" && (slot.confidence ?? 0) < criteria.min_confidence;
  const min = `below min_confidence ${criteria.min_confidence}`;
  if (status === "error") return ["error", "the slot's job failed, so the run is error"];
  if (status === "pending") return ["error", "the slot was still pending when the verdict was decided"];
  if (status === "skipped" && presence !== "optional") return ["error", `${presence} slot skipped, which only optional slots can be`];
  if (presence === "optional") return ["passed", "optional slot: reported, never decisive"];
  if (status === "matched" && !low) return ["passed", `${presence} slot matched`];
  const what = low ? `matched ${min}` : status;
  if (presence === "expected") {
    return criteria.allow_review_on_expected
      ? ["review", `expected slot ${what}; allow_review_on_expected sends it to a person`]
      : ["failed", `expected slot ${what} and allow_review_on_expected is off`];
  }
  if (status === "unmatched" && !criteria.all_required_matched)
    return ["review", "required slot unmatched; all_required_matched is off, so a person decides"];
  const rule = status === "unmatched" ? " and all_required_matched is on" : "";
  return ["failed", `required slot ${what}${rule}`];
}

export function worst(outcomes) {
  return outcomes.reduce((a, b) => (WORST.indexOf(b) > WORST.indexOf(a) ? b : a), "passed");
}

function number(value) {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return NaN;
  const cleaned = value.replace(/[^0-9.\-]/g, "");
  return cleaned ? Number(cleaned) : NaN;
}

function days(a, b) {
  const [x, y] = [Date.parse(String(a).slice(0, 10)), Date.parse(String(b).slice(0, 10))];
  return Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.round((x - y) / 86400000);
}

const text = (v) => String(v ?? "").normalize("NFKC").slice(0, 200);

// Characters of `a` (as written) not in a longest common subsequence with `b`, ignoring case:
// [{text, same}] segments, and how many characters of `b` are not in `a`.
export function charDiff(a, b) {
  const [s, t] = [text(a), text(b)];
  const [ls, lt] = [s.toLowerCase(), t.toLowerCase()];
  const rows = Array.from({ length: s.length + 1 }, () => new Uint16Array(t.length + 1));
  for (let i = s.length - 1; i >= 0; i--)
    for (let j = t.length - 1; j >= 0; j--)
      rows[i][j] = ls[i] === lt[j] ? rows[i + 1][j + 1] + 1 : Math.max(rows[i + 1][j], rows[i][j + 1]);
  const out = [];
  let [i, j] = [0, 0];
  const push = (ch, same) => {
    const last = out[out.length - 1];
    if (last && last.same === same) last.text += ch; else out.push({ text: ch, same });
  };
  while (i < s.length) {
    if (j < t.length && ls[i] === lt[j]) { push(s[i], true); i++; j++; }
    else if (j < t.length && rows[i][j + 1] >= rows[i + 1][j]) j++;
    else { push(s[i], false); i++; }
  }
  return { segments: out, missing: t.length - rows[0][0] };
}

// A short text saying how the input value differs from the reference value, or "same".
export function difference(e) {
  if (e.score === 1) return "same";
  if (e.source_value == null || e.source_value === "" || e.reference_value == null) return "value missing";
  if (e.strategy === "numeric_range") {
    const [a, b] = [number(e.source_value), number(e.reference_value)];
    if (Number.isNaN(a) || Number.isNaN(b)) return "not a number";
    const off = a - b, pct = b ? ` (${((Math.abs(off) / Math.abs(b)) * 100).toFixed(2)} %)` : "";
    return `input off by ${off > 0 ? "+" : ""}${+off.toFixed(4)}${pct}`;
  }
  if (e.strategy === "date_range") {
    const d = days(e.source_value, e.reference_value);
    return Number.isNaN(d) ? "not a date" : `input ${Math.abs(d)} day${Math.abs(d) === 1 ? "" : "s"} ${d > 0 ? "later" : "earlier"}`;
  }
  const { segments, missing } = charDiff(e.reference_value, e.source_value);
  const extra = segments.filter((s) => !s.same).reduce((n, s) => n + s.text.length, 0);
  const n = Math.max(extra, missing);
  return `differs in ${n} character${n === 1 ? "" : "s"} (marked)`;
}
