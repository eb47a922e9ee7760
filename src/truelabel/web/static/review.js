// Review page: keyboard shortcuts over the JSON API. Text is only ever set with
// textContent (never innerHTML), so item texts and labels cannot inject markup.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const classes = Array.from(document.querySelectorAll("#classes button[data-label]")).map(
    (b) => b.dataset.label);
  let task = null;
  let shownAt = performance.now();
  const skipped = [];
  const done = [];  // decision ids of this sitting, newest last (for undo)
  let busy = false;

  function status(text) { $("status").textContent = text; }

  function fill(list, rows, render) {
    list.replaceChildren(...rows.map((row) => { const li = document.createElement("li"); render(li, row); return li; }));
  }

  function contextItem(li, n, image) {
    const link = document.createElement("a");
    link.href = "/items/" + Number(n.item_id);
    link.textContent = n.external_id;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = n.label === null ? "" : n.label;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = image || n.content === null ? "" : n.content;
    li.append(link, " ", label, " ", text);
  }

  function show(t) {
    task = t;
    $("empty").hidden = !!t;
    $("task").hidden = !t;
    if (!t) return;
    $("task").dataset.taskId = String(t.task_id);
    $("external-id").textContent = t.external_id;
    $("priority").textContent = t.priority.toFixed(3);
    const image = t.content_kind === "image";
    $("content").textContent = image ? "" : (t.content || "");
    $("image").hidden = !image;
    if (image) $("image").src = "/api/items/" + t.item_id + "/image";
    $("given-label").textContent = t.given_label || "";
    $("current-label").textContent = t.current_label || "";
    $("suggested-label").textContent = t.suggested_label || "—";
    $("task-state").textContent = t.task_status === "open" ? "" :
      (t.task_status === null ? "no review task" : "task " + t.task_status);
    fill($("explanation"), t.explanation, (li, r) => { li.textContent = r; });
    fill($("reasons"), t.reasons, (li, r) => { li.textContent = r; });
    fill($("neighbors"), t.neighbors, (li, n) => contextItem(li, n, image));
    if (t.duplicates.length) fill($("duplicates"), t.duplicates, (li, n) => contextItem(li, n, image));
    else fill($("duplicates"), ["none"], (li, r) => { li.className = "muted"; li.textContent = r; });
    fill($("top-classes"), t.top_classes, (li, c) => {
      const name = document.createElement("span");
      name.className = "label";
      name.textContent = c.label;
      const bar = document.createElement("meter");
      bar.min = 0; bar.max = 1; bar.value = c.probability;
      li.append(name, " ", bar, " " + c.probability.toFixed(2));
    });
    shownAt = performance.now();
  }

  async function api(method, path, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const response = await fetch(path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.detail) ? JSON.stringify(data.detail) : response.statusText);
    return data;
  }

  async function loadNext() {
    const query = skipped.map((id) => "&exclude=" + id).join("");
    const tasks = await api("GET", "/api/tasks/next?limit=1" + query);
    show(tasks.length ? tasks[0] : null);
  }

  async function act(action, label) {
    if (busy) return;
    busy = true;
    try {
      if (action === "undo") {
        const id = done.pop();
        if (id === undefined) { status("nothing to undo in this sitting"); return; }
        await api("POST", "/api/decisions/undo", { decision_id: id });
        await loadNext();
        status("undone decision " + id);  // set last: the page is ready for the next key
        return;
      }
      if (!task) return;
      if (task.task_status !== "open") {
        // an item page of a reviewed (or never queued) item: go on with the queue
        await loadNext();
        status("that item has no open task; here is the next one");
        return;
      }
      const seconds = Math.round((performance.now() - shownAt) / 100) / 10;
      const body = { task_id: task.task_id, action, seconds_spent: seconds };
      if (label !== undefined) body.label = label;
      const decision = await api("POST", "/api/decisions", body);
      let message = "skipped";
      if (action === "skip") skipped.push(task.task_id);
      else { done.push(decision.id); message = action + ": " + decision.new_label + " (decision " + decision.id + ")"; }
      await loadNext();
      status(message);
    } catch (err) {
      status("error: " + err.message);
    } finally {
      busy = false;
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    const key = event.key;
    if (key >= "1" && key <= "9") {
      const label = classes[Number(key) - 1];
      if (label !== undefined) { event.preventDefault(); act("relabel", label); }
    } else if (key === "a") { event.preventDefault(); act("accept"); }
    else if (key === "k") { event.preventDefault(); act("keep"); }
    else if (key === "s") { event.preventDefault(); act("skip"); }
    else if (key === "u") { event.preventDefault(); act("undo"); }
  });
  document.querySelectorAll("button[data-action]").forEach((b) =>
    b.addEventListener("click", () => act(b.dataset.action)));
  document.querySelectorAll("#classes button[data-label]").forEach((b) =>
    b.addEventListener("click", () => act("relabel", b.dataset.label)));
  // the server rendered the first task already; fetch it as data so the keys can act on it
  // (an item page fetches its item; the queue follows after its decision)
  const itemId = document.getElementById("review").dataset.itemId;
  const first = itemId ? api("GET", "/api/items/" + Number(itemId)).then(show) : loadNext();
  first.catch((err) => status("error: " + err.message)).finally(() => {
    document.body.dataset.ready = "1";
  });
})();
