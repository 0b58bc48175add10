/* The /play/ page: HLS where the browser plays it, the progressive stream elsewhere, and a seek
 * bar whose hover shows the storyboard tile for that time (a WebVTT track of sprite-sheet tiles). */
(function () {
  "use strict";
  const player = document.getElementById("player");
  const bar = document.getElementById("seekbar");
  if (!player || !bar) return;
  const played = document.getElementById("played");
  const preview = document.getElementById("preview");
  const image = document.getElementById("preview-image");
  const label = document.getElementById("preview-time");
  const PROGRESSIVE = [["mp4", "video/mp4"], ["webm", "video/webm"], ["m4a", "audio/mp4"], ["mp3", "audio/mpeg"]];
  let cues = [];

  function choose() {
    // Chromium 142+ and Safari play HLS themselves; the playlist says the duration at once.
    if (player.dataset.hls && player.canPlayType("application/vnd.apple.mpegurl")) {
      player.src = player.dataset.hls;
      return "hls";
    }
    for (const [key, type] of PROGRESSIVE) {
      if (!player.dataset[key]) continue;
      const source = document.createElement("source");
      source.src = player.dataset[key];
      source.type = type;
      player.appendChild(source);
    }
    player.load();
    return "progressive";
  }

  function seconds(stamp) {
    const [hours, minutes, rest] = stamp.trim().split(":");
    return Number(hours) * 3600 + Number(minutes) * 60 + Number(rest);
  }

  function parse(text) {
    const found = [];
    for (const block of text.split(/\n\s*\n/)) {
      const lines = block.trim().split("\n");
      const timing = lines.findIndex((line) => line.includes("-->"));
      if (timing < 0 || !lines[timing + 1]) continue;
      const [start, end] = lines[timing].split("-->").map(seconds);
      const [url, fragment] = lines[timing + 1].trim().split("#xywh=");
      const [x, y, w, h] = (fragment || "0,0,0,0").split(",").map(Number);
      found.push({ start, end, url, x, y, w, h });
    }
    return found;
  }

  function length() {
    if (Number.isFinite(player.duration) && player.duration > 0) return player.duration;
    return cues.length ? cues[cues.length - 1].end : 0;
  }

  function timeAt(event) {
    const box = bar.getBoundingClientRect();
    return Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)) * length();
  }

  function clock(value) {
    const whole = Math.floor(value);
    const minutes = Math.floor(whole / 60);
    return `${minutes}:${String(whole % 60).padStart(2, "0")}`;
  }

  function show(event) {
    const time = timeAt(event);
    const cue = cues.find((c) => c.start <= time && time < c.end) || cues[cues.length - 1];
    label.textContent = clock(time);
    if (cue) {
      image.style.width = `${cue.w}px`;
      image.style.height = `${cue.h}px`;
      image.style.backgroundImage = `url("${cue.url}")`;
      image.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      image.dataset.src = cue.url;
    }
    preview.style.left = `${(time / (length() || 1)) * 100}%`;
    preview.hidden = false;
  }

  document.getElementById("delivery").textContent = choose();
  if (player.dataset.storyboard) {
    fetch(player.dataset.storyboard)
      .then((response) => (response.ok ? response.text() : ""))
      .then((text) => { cues = parse(text); });
  }
  bar.addEventListener("mousemove", show);
  bar.addEventListener("mouseleave", () => { preview.hidden = true; });
  bar.addEventListener("click", (event) => { player.currentTime = timeAt(event); });
  player.addEventListener("timeupdate", () => {
    played.style.width = `${(player.currentTime / (length() || 1)) * 100}%`;
  });
})();
