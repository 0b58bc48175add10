// Live render status in the admin: the change list's bars, and everything on a render's page.
// Each [data-render-progress] element follows its render's Server-Sent Events stream and,
// when EventSource is missing or the stream fails, polls the status URL once a second.
// Every update also reaches the page's other parts for that render ([data-render-id]): the
// heading, the buttons that apply, and at completion the player with its poster.
(function () {
  "use strict";
  var FINAL = { complete: true, failed: true, canceled: true };

  // The same words and rules as the admin's status_label() and buttons().
  function label(data) {
    return data.started === false && !FINAL[data.status] ? "not started" : data.status;
  }

  function applies(action, data) {
    var started = data.started !== false;
    if (action === "start") return !started && !FINAL[data.status];
    if (action === "cancel") return !FINAL[data.status];
    if (action === "retry") return data.status === "failed" || data.status === "canceled";
    return true;
  }

  function reveal(player) {
    var video = player.querySelector("video");
    if (!video.getAttribute("src")) {
      video.poster = video.dataset.poster;
      video.src = video.dataset.src;
    }
    player.hidden = false;
  }

  function showPage(id, data) {
    document.querySelectorAll('[data-render-id="' + id + '"]').forEach(function (el) {
      if (el.hasAttribute("data-render-heading")) el.textContent = label(data);
      if (el.dataset.renderAction) el.hidden = !applies(el.dataset.renderAction, data);
      if (el.hasAttribute("data-render-player") && data.status === "complete") reveal(el);
      if (el.hasAttribute("data-render-no-output")) el.hidden = data.status === "complete";
    });
  }

  function show(el, data) {
    var bar = el.querySelector("progress");
    var pct = Number(data.progress || 0);
    bar.value = pct;
    bar.textContent = Math.floor(pct) + "%";
    el.querySelector(".render-percent").textContent = Math.floor(pct) + "%";
    el.querySelector(".render-status").textContent = label(data);
    el.querySelector(".render-stage").textContent =
      data.status === "processing" && data.stage ? "(" + data.stage + (data.eta_seconds != null ? ", ETA " + Math.round(data.eta_seconds) + " s" : "") + ")" : "";
    el.dataset.status = data.status;
    var link = el.querySelector(".render-output");
    if (data.videos && data.videos.length) { link.href = data.videos[0]; link.hidden = false; }
    var error = el.querySelector(".render-error");
    error.textContent = data.error || "";
    error.hidden = !data.error;
    showPage(el.dataset.renderId, data);
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
