// Live progress bars for render jobs in the admin (change list and change form).
// Each [data-render-progress] element follows its render's Server-Sent Events stream and,
// when EventSource is missing or the stream fails, polls the status URL once a second.
(function () {
  "use strict";
  var FINAL = { complete: true, failed: true, canceled: true };

  function show(el, data) {
    var bar = el.querySelector("progress");
    var pct = Number(data.progress || 0);
    bar.value = pct;
    bar.textContent = Math.floor(pct) + "%";
    el.querySelector(".render-percent").textContent = Math.floor(pct) + "%";
    el.querySelector(".render-status").textContent = data.started === false && !FINAL[data.status] ? "not started" : data.status;
    el.querySelector(".render-stage").textContent =
      data.status === "processing" && data.stage ? "(" + data.stage + (data.eta_seconds != null ? ", ETA " + Math.round(data.eta_seconds) + " s" : "") + ")" : "";
    el.dataset.status = data.status;
    var link = el.querySelector(".render-output");
    if (data.videos && data.videos.length) { link.href = data.videos[0]; link.hidden = false; }
    var error = el.querySelector(".render-error");
    error.textContent = data.error || "";
    error.hidden = !data.error;
  }

  function poll(el) {
    var timer = setInterval(function () {
      fetch(el.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          show(el, data);
          if (FINAL[data.status]) clearInterval(timer);
        })
        .catch(function () { /* keep polling: the next tick may succeed */ });
    }, 1000);
  }

  function follow(el) {
    if (FINAL[el.dataset.status]) return;
    if (!window.EventSource) { poll(el); return; }
    var source = new EventSource(el.dataset.eventsUrl);
    var finished = false;
    source.addEventListener("status", function (event) {
      var data = JSON.parse(event.data);
      show(el, data);
      if (FINAL[data.status]) { finished = true; source.close(); }
    });
    source.onerror = function () {
      if (finished) return;
      source.close();
      poll(el);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-render-progress]").forEach(follow);
  });
})();
