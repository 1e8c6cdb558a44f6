// The console's report page: `frontline report` over the gateway's records for a range of
// days (default: the last seven), as the gateway renders it (GET /api/report). The tables come
// as HTML in which anything a caller said is already escaped; the plots are SVG, shown as
// images so that nothing in them can run.
"use strict";
const $ = (id) => document.getElementById(id);

async function show(since, until) {
  const params = new URLSearchParams();
  if (since) params.set("since", since);
  if (until) params.set("until", until);
  $("report-status").dataset.state = "loading";
  $("report-status").textContent = "loading…";
  let body;
  let r;
  try {
    r = await fetch(`/api/report?${params}`);
    body = await r.json();
  } catch (e) {
    body = { error: `the gateway did not answer: ${e}` };
  }
  if (!r || !r.ok) {
    const signIn = r && r.status === 401 ? " (sign in on the agent console first)" : "";
    $("report-status").dataset.state = "down";
    $("report-status").textContent = `${body.error || "the report failed"}${signIn}`;
    return;
  }
  $("report").innerHTML = body.html;
  const plots = $("report-plots");
  plots.replaceChildren(
    ...body.plots.map((p) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = p.name;
      img.dataset.plot = p.name;
      img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(p.svg)}`;
      figure.append(img);
      return figure;
    }),
  );
  // What callers said: set as text, never as markup.
  $("missed").replaceChildren(
    ...body.missed.map((g, i) => {
      const li = document.createElement("li");
      li.dataset.group = String(i + 1);
      const head = document.createElement("p");
      head.textContent = `#${i + 1}, ${g.misses.length} time(s), ${g.misses[0]?.language || "?"}: "${g.phrase}"`;
      const list = document.createElement("ul");
      for (const m of g.misses.slice(0, 5)) {
        const item = document.createElement("li");
        item.textContent = `${m.call_id} turn ${m.turn}: ${m.heard}`;
        list.append(item);
      }
      li.append(head, list);
      return li;
    }),
  );
  if (body.missed.length === 0) $("missed").textContent = "Nothing: the playbook understood every caller in these days.";
  $("report-status").dataset.state = "live";
  $("report-status").textContent = body.title;
}

$("report-range").addEventListener("submit", (e) => {
  e.preventDefault();
  show($("report-since").value, $("report-until").value);
});
show("", "");
