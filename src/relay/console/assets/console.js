// The live page: rows and the state at a glance arrive as server-rendered HTML over
// server-sent events (/events); this only puts them in place.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const glance = document.getElementById("glance");
  const stream = document.getElementById("stream");
  const KEEP = 200;
  const status = (state, text) => { stream.dataset.state = state; stream.textContent = text; };
  const events = new EventSource("/events");
  events.onopen = () => status("live", "live");
  events.onerror = () => status("down", "disconnected, retrying…");
  events.addEventListener("webhook", (e) => {
    live.insertAdjacentHTML("afterbegin", e.data);
    const row = live.firstElementChild;
    if (row) row.classList.add("fresh");
    while (live.children.length > KEEP) live.lastElementChild.remove();
    const empty = document.getElementById("empty");
    if (empty) empty.remove();
  });
  events.addEventListener("glance", (e) => { glance.innerHTML = e.data; });
  events.addEventListener("missed", (e) => status("down", e.data));
})();
