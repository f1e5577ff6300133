// The oversight dashboard: reads the read-only API with the pasted token (kept for this tab only)
// and draws its figures as inline SVG. Nothing is fetched from anywhere but this service.
"use strict";

const TEXT = {
  vi: {
    title: "Giám sát Tổng đài 1022", switch: "English", token: "Mã truy cập (HĐND, MTTQ hoặc Tổng đài 1022)",
    enter: "Xem", leave: "Thoát", asOf: "Số liệu lúc", byStatus: "Hồ sơ theo trạng thái", total: "Tổng số",
    overdueNow: "Quá hạn hiện tại", status: "Trạng thái", count: "Số hồ sơ", byArea: "Hồ sơ theo địa bàn",
    area: "Địa bàn", open: "Đang xử lý", ranking: "Xếp hạng đơn vị theo tỷ lệ đúng hạn", rank: "Hạng",
    unit: "Đơn vị", received: "Tiếp nhận", resolved: "Đã giải quyết", onTime: "Đúng hạn",
    medianRoute: "Trung vị thời gian chuyển", medianResolve: "Trung vị thời gian giải quyết",
    leftLate: "Trễ hạn, đã chuyển đi",
    overdueList: "Hồ sơ quá hạn", code: "Mã tra cứu", citizen: "Người dân", deadline: "Hạn giải quyết",
    timeline: "Dòng thời gian của hồ sơ", caseRef: "Mã tra cứu hoặc mã hồ sơ", show: "Xem",
    noArea: "Chưa xác định", badToken: "Mã truy cập không đúng.", notFound: "Không tìm thấy hồ sơ.",
    failed: "Không tải được số liệu", roles: { council: "HĐND", front: "MTTQ", centre: "Tổng đài 1022" },
    delivery: "Gửi thông báo", locale: "vi-VN",
    events: {
      CaseOpened: "Tiếp nhận phản ánh", CaseRouted: "Chuyển đơn vị xử lý", CaseTriaged: "Chuyển Tổng đài phân loại",
      AssignmentIssued: "Giao đầu mối xử lý", CaseAccepted: "Đơn vị nhận xử lý", CaseDeclined: "Đơn vị trả lại",
      ProgressReported: "Báo cáo tiến độ", CaseResolved: "Có kết quả giải quyết", CaseClosed: "Đóng hồ sơ",
      CaseReopened: "Mở lại hồ sơ", CaseEscalated: "Báo cáo cấp trên (quá hạn)", DuplicateLinked: "Gộp phản ánh trùng",
      CaseMarkedDuplicate: "Trùng với phản ánh đang xử lý",
    },
  },
  en: {
    title: "1022 hotline oversight", switch: "Tiếng Việt", token: "Access token (council, front or 1022 centre)",
    enter: "Show", leave: "Sign out", asOf: "Figures as of", byStatus: "Cases by status", total: "Total",
    overdueNow: "Overdue now", status: "Status", count: "Cases", byArea: "Cases by area", area: "Area",
    open: "Open", ranking: "Units ranked by on-time rate", rank: "Rank", unit: "Unit", received: "Received",
    resolved: "Resolved", onTime: "On time", medianRoute: "Median time to route",
    medianResolve: "Median time to resolve", leftLate: "Late, now held elsewhere",
    overdueList: "Overdue cases", code: "Tracking code",
    citizen: "Citizen", deadline: "Deadline", timeline: "A case's timeline", caseRef: "Tracking code or case id",
    show: "Show", noArea: "Not yet known", badToken: "That token is not valid.", notFound: "No such case.",
    failed: "Could not load the figures", roles: { council: "People's Council", front: "Fatherland Front", centre: "1022 centre" },
    delivery: "Notification", locale: "en-GB",
    events: {
      CaseOpened: "Request received", CaseRouted: "Sent to the unit", CaseTriaged: "Sent to the 1022 centre to sort",
      AssignmentIssued: "Given to a handler", CaseAccepted: "Accepted by the unit", CaseDeclined: "Declined by the unit",
      ProgressReported: "Progress reported", CaseResolved: "Resolved", CaseClosed: "Closed", CaseReopened: "Reopened",
      CaseEscalated: "Escalated (deadline missed)", DuplicateLinked: "A repeated report linked",
      CaseMarkedDuplicate: "Repeats an open case",
    },
  },
};
const LABELS = JSON.parse(document.getElementById("labels").textContent);
const OPEN = LABELS.open_statuses;
let lang = localStorage.getItem("oversight.lang") || "vi";
let data = null;
const t = (key) => TEXT[lang][key];
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function statusLabel(status) { const l = LABELS.statuses[status]; return l ? l[lang === "vi" ? 0 : 1] : status; }
function percent(rate) { return rate === null ? "—" : (rate * 100).toLocaleString(t("locale"), { maximumFractionDigits: 1 }) + " %"; }
function duration(seconds) {
  if (seconds === null) return "—";
  if (seconds < 3600) return Math.round(seconds / 60) + (lang === "vi" ? " phút" : " min");
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + (lang === "vi" ? " giờ" : " h");
  return (seconds / 86400).toFixed(1) + (lang === "vi" ? " ngày" : " days");
}
function when(iso) { return iso ? new Date(iso).toLocaleString(t("locale"), { timeZone: "Asia/Ho_Chi_Minh" }) : "—"; }

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + sessionStorage.getItem("oversight.token") } });
  if (response.status === 401) throw new Error(t("badToken"));
  if (!response.ok) throw new Error(t("failed") + " (" + response.status + ")");
  return response.json();
}

function cell(row, text, attrs = {}) {
  const td = document.createElement("td");
  td.textContent = text;
  for (const [k, v] of Object.entries(attrs)) td.setAttribute(k, v);
  row.appendChild(td);
  return td;
}
function fill(tableId, items, draw) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const item of items) { const tr = document.createElement("tr"); draw(tr, item); body.appendChild(tr); }
}

// A horizontal bar chart: one bar a row, its length value / max, its label on the left.
function bars(containerId, rows, max, format) {
  const height = 22, labelWidth = 260, width = 900;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * height + 4}`);
  svg.setAttribute("role", "img");
  rows.forEach((row, i) => {
    const y = i * height + 2, length = max ? (row.value / max) * (width - labelWidth - 90) : 0;
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 0); label.setAttribute("y", y + 15); label.textContent = row.label;
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", labelWidth); bar.setAttribute("y", y + 3); bar.setAttribute("height", height - 6);
    bar.setAttribute("width", Math.max(length, 0)); bar.setAttribute("class", row.late ? "bar late" : "bar");
    bar.dataset.value = row.value === null ? "" : row.value;  // nothing due: no bar, and "—", not "0 %"
    const figure = document.createElementNS(SVG, "text");
    figure.setAttribute("x", labelWidth + length + 6); figure.setAttribute("y", y + 15); figure.textContent = format(row.value);
    svg.append(label, bar, figure);
  });
  $(containerId).replaceChildren(svg);
}

function render() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.title = t("title");
  if (!data) return;
  const { overview, units, overdue, role } = data;
  $("who").textContent = t("roles")[role] || "";
  $("as-of").textContent = when(overview.as_of);
  $("total").textContent = overview.total;
  $("overdue-total").textContent = overview.overdue_now;
  const statuses = Object.entries(overview.by_status).sort((a, b) => b[1] - a[1]);
  bars("status-chart", statuses.map(([s, n]) => ({ label: statusLabel(s), value: n })), Math.max(0, ...statuses.map((e) => e[1])), String);
  fill("status-table", statuses, (tr, [s, n]) => { tr.dataset.status = s; cell(tr, statusLabel(s)); cell(tr, n, { class: "n", "data-count": n }); });
  const areaName = (a) => a.area_name || a.area_code || t("noArea");
  const open = (a) => OPEN.reduce((sum, s) => sum + (a.by_status[s] || 0), 0);
  bars("area-chart", overview.by_area.map((a) => ({ label: areaName(a), value: a.total })), Math.max(0, ...overview.by_area.map((a) => a.total)), String);
  fill("area-table", overview.by_area, (tr, a) => {
    tr.dataset.area = a.area_code || "";
    cell(tr, areaName(a)); cell(tr, a.total, { class: "n", "data-total": a.total });
    cell(tr, open(a), { class: "n", "data-open": open(a) }); cell(tr, a.overdue_now, { class: "n", "data-overdue": a.overdue_now });
  });
  bars("unit-chart", units.units.map((u) => ({ label: `${u.rank}. ${u.unit_name}`, value: u.on_time_rate, late: u.overdue_now + u.left_late > 0 })), 1, (v) => percent(v));
  fill("unit-table", units.units, (tr, u) => {
    Object.assign(tr.dataset, { unitId: u.unit_id, rank: u.rank, onTimeRate: u.on_time_rate === null ? "" : u.on_time_rate });
    cell(tr, u.rank, { class: "n" }); cell(tr, u.unit_name);
    cell(tr, u.received, { class: "n", "data-received": u.received }); cell(tr, u.open, { class: "n", "data-open": u.open });
    cell(tr, u.resolved, { class: "n", "data-resolved": u.resolved }); cell(tr, percent(u.on_time_rate), { class: "n" });
    cell(tr, duration(u.median_route_seconds), { class: "n" }); cell(tr, duration(u.median_resolve_seconds), { class: "n" });
    cell(tr, u.overdue_now, { class: "n", "data-overdue": u.overdue_now });
    cell(tr, u.left_late, { class: "n", "data-left-late": u.left_late });
  });
  fill("overdue-table", overdue.items, (tr, c) => {
    tr.dataset.caseId = c.case_id;
    const code = cell(tr, c.tracking_code, { class: "case" });
    code.addEventListener("click", () => { $("case-ref").value = c.tracking_code; showTimeline(c.tracking_code); });
    cell(tr, c.unit_name || "—"); cell(tr, statusLabel(c.status)); cell(tr, c.citizen_name || "—");
    cell(tr, when(c.resolve_by || c.reach_by)); // in triage, the centre's time to send it on
  });
  if (data.timeline) drawTimeline(data.timeline);
}

function drawTimeline({ caseRow, timeline }) {
  $("case-summary").textContent = `${caseRow.tracking_code} · ${statusLabel(caseRow.status)} · ${caseRow.unit_name || "—"}`;
  const items = timeline.events.map((e) => ({ at: e.occurred_at, kind: e.event_type, what: t("events")[e.event_type] || e.event_type, who: e.producer, id: e.event_id }))
    .concat(timeline.deliveries.map((d) => ({ at: d.occurred_at, kind: "delivery", what: `${t("delivery")}: ${d.recipient} · ${d.channel} · ${d.outcome}`, who: "notifier", id: d.delivery_id })))
    .sort((a, b) => a.at.localeCompare(b.at));
  const list = $("timeline");
  list.replaceChildren();
  for (const item of items) {
    const li = document.createElement("li");
    li.dataset.eventId = item.id; li.dataset.kind = item.kind;
    const time = document.createElement("time");
    time.dateTime = item.at; time.textContent = when(item.at);
    li.append(time, `${item.what} — ${item.who}`);
    list.appendChild(li);
  }
}

async function showTimeline(ref) {
  ref = ref.trim();
  try {
    const isId = /^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(ref);
    const caseRow = isId ? await api(`/v1/cases/${ref}`) : (await api(`/v1/cases?tracking_code=${encodeURIComponent(ref)}&limit=1`)).items[0];
    if (!caseRow) throw new Error(t("notFound"));
    data.timeline = { caseRow, timeline: await api(`/v1/cases/${caseRow.case_id}/timeline`) };
    $("error").textContent = "";
    drawTimeline(data.timeline);
  } catch (error) {
    $("error").textContent = error.message.includes("404") ? t("notFound") : error.message;
  }
}

async function load() {
  document.body.dataset.loaded = "false";
  const [overview, units, overdue] = await Promise.all([api("/v1/stats/overview"), api("/v1/stats/units"), api("/v1/stats/overdue?limit=100")]);
  data = { overview, units, overdue, role: sessionStorage.getItem("oversight.role") };
  $("board").hidden = false; $("logout").hidden = false;
  render();
  document.body.dataset.loaded = "true";
}

async function signIn(token) {
  sessionStorage.setItem("oversight.token", token);
  try {
    const whoami = await fetch("/v1/whoami", { headers: { Authorization: "Bearer " + token } });
    if (!whoami.ok) throw new Error(t("badToken"));
    sessionStorage.setItem("oversight.role", (await whoami.json()).role);
    $("error").textContent = "";
    await load();
  } catch (error) {
    sessionStorage.removeItem("oversight.token");
    $("error").textContent = error.message;
  }
}

$("login").addEventListener("submit", (event) => { event.preventDefault(); signIn($("token").value.trim()); });
$("logout").addEventListener("click", () => { sessionStorage.clear(); location.reload(); });
$("lookup").addEventListener("submit", (event) => { event.preventDefault(); showTimeline($("case-ref").value); });
$("lang").addEventListener("click", () => { lang = lang === "vi" ? "en" : "vi"; localStorage.setItem("oversight.lang", lang); render(); });
render();
if (sessionStorage.getItem("oversight.token")) signIn(sessionStorage.getItem("oversight.token"));
