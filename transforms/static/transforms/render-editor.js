// The render editor in the admin (forms.RenderForm): clip rows that are added, removed and
// moved; the media picker (thumbnails, search by name); the size presets; and the
// "Recipe as JSON" tab, which turns the form into the API's recipe and the recipe back
// into the form, so both views stay one recipe. The server checks whatever is saved.
(function () {
  "use strict";
  var TOP_KEYS = ["size", "fps", "format", "crossfade", "clips", "audio"];
  var KINDS = ["video", "image", "title"];
  var editor, list, total, mode, jsonArea, dialog, target, searchSeq = 0, searchTimer = null;

  function one(selector, root) { return (root || document).querySelector(selector); }
  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function rowInput(row, name) { return one('[name$="-' + name + '"]', row); }

  // --- clip rows -------------------------------------------------------------------------------

  function renumber() {
    all("[data-clip]", list).forEach(function (row, index) {
      one("[data-clip-number]", row).textContent = index + 1;
      rowInput(row, "ORDER").value = index + 1;
    });
  }

  function addRow(kind) {
    var template = one('[data-clip-template="' + kind + '"]', editor);
    var index = Number(total.value);
    var holder = document.createElement("ol");
    holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index));
    var row = holder.firstElementChild;
    list.appendChild(row);
    total.value = index + 1;
    renumber();
    return row;
  }

  function moveRow(row, up) {
    var other = up ? row.previousElementSibling : row.nextElementSibling;
    if (!other) return;
    list.insertBefore(up ? row : other, up ? other : row);
    renumber();
  }

  // --- the media picker ------------------------------------------------------------------------

  function seconds(value) {
    if (value < 60) return value.toFixed(1).replace(/\.0$/, "") + " s";
    var minutes = Math.floor(Math.round(value) / 60), rest = Math.round(value) % 60;
    return minutes + " min" + (rest ? " " + rest + " s" : "");
  }

  function entryLabel(entry) {  // as picker.entry_label()
    var parts = entry.duration != null ? [seconds(entry.duration)] : [];
    if (entry.width && entry.height) parts.push(entry.width + "×" + entry.height);
    return parts.join(" · ");
  }

  function preview(field, entry) {
    var thumb = one("[data-picker-thumb]", field);
    var input = one("input", field);
    if (entry && entry.thumbnail) { thumb.src = entry.thumbnail; thumb.hidden = false; }
    else { thumb.hidden = true; thumb.removeAttribute("src"); }
    one("[data-picker-info]", field).textContent = entry ? entryLabel(entry)
      : (input.value ? "not a readable " + field.dataset.kind + " file" : "");
  }

  function ask(kind, params) {
    var url = editor.dataset.pickerUrl + "?kind=" + encodeURIComponent(kind) + "&" + params;
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  function describeTyped(field) {
    var input = one("input", field);
    if (!input.value) { preview(field, null); return; }
    ask(field.dataset.kind, "path=" + encodeURIComponent(input.value))
      .then(function (answer) { preview(field, answer.results[0] || null); })
      .catch(function () { preview(field, null); });
  }

  function choice(entry) {
    var item = document.createElement("li");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "render-picker-choice";
    button.dataset.pickerChoice = "";
    button.dataset.path = entry.path;
    var picture = document.createElement(entry.thumbnail ? "img" : "span");
    if (entry.thumbnail) { picture.src = entry.thumbnail; picture.alt = ""; picture.loading = "lazy"; }
    else { picture.textContent = "♪"; picture.className = "render-picker-sound"; }
    var name = document.createElement("span");
    name.className = "render-picker-name";
    name.textContent = entry.path;
    var info = document.createElement("span");
    info.className = "render-picker-meta";
    info.textContent = entryLabel(entry);
    button.append(picture, name, info);
    button.addEventListener("click", function () {
      one("input", target).value = entry.path;
      preview(target, entry);
      dialog.close();
      one("input", target).focus();
    });
    item.appendChild(button);
    return item;
  }

  function search(query) {
    var mine = ++searchSeq, kind = target.dataset.kind;
    var status = one("[data-picker-status]", dialog), results = one("[data-picker-results]", dialog);
    status.textContent = "Looking…";
    ask(kind, "q=" + encodeURIComponent(query)).then(function (answer) {
      if (mine !== searchSeq) return;
      results.textContent = "";
      answer.results.forEach(function (entry) { results.appendChild(choice(entry)); });
      status.textContent = !answer.results.length ? "No " + kind + " file matches." :
        answer.more ? "More files match: type more of the name." : "";
    }).catch(function (error) { status.textContent = "The media folder could not be listed (" + error.message + ")."; });
  }

  function openPicker(field) {
    target = field;
    one("[data-picker-kind]", dialog).textContent = field.dataset.kind;
    one("[data-picker-search]", dialog).value = "";
    one("[data-picker-results]", dialog).textContent = "";
    dialog.showModal();
    one("[data-picker-search]", dialog).focus();
    search("");
  }

  // --- recipe JSON <-> form --------------------------------------------------------------------

  function value(input) {
    if (input.type === "checkbox") return input.checked;
    if (input.value === "") return null;
    return input.type === "number" ? Number(input.value) : input.value;
  }

  function put(object, key, input) {
    var v = value(input);
    if (v !== null) object[key] = v;
  }

  function formToRecipe() {
    var recipe = {}, preset = one("#id_size_preset").value;
    var size = preset !== "custom" ? preset.split("x").map(Number) : [value(one("#id_width")), value(one("#id_height"))];
    if (size[0] !== null && size[1] !== null) recipe.size = size;
    ["fps", "format", "crossfade"].forEach(function (key) { put(recipe, key, one("#id_" + key)); });
    recipe.clips = all("[data-clip]", list).map(function (row) {
      var clip = {}, kind = row.dataset.kind;
      clip[kind] = rowInput(row, kind).value;
      all(".render-field input", row).forEach(function (input) {
        var key = input.name.split("-").pop();
        if (key !== kind) put(clip, key, input);
      });
      return clip;
    });
    if (one("#id_audio_source").value) {
      recipe.audio = { source: one("#id_audio_source").value, loop: one("#id_audio_loop").checked };
      put(recipe.audio, "volume", one("#id_audio_volume"));
      put(recipe.audio, "start", one("#id_audio_start"));
    }
    return recipe;
  }

  function set(input, v) {
    if (!input) return false;
    if (input.type === "checkbox") { input.checked = v !== false; return true; }
    if (input.type === "color" && typeof v === "string" && /^#?[0-9a-f]{6}$/i.test(v)) v = "#" + v.replace("#", "").toLowerCase();
    input.value = v === null || v === undefined ? "" : v;
    return true;
  }

  function recipeToForm(recipe) {
    if (!recipe || typeof recipe !== "object" || Array.isArray(recipe)) throw new Error("the recipe must be a JSON object");
    var dropped = Object.keys(recipe).filter(function (key) { return TOP_KEYS.indexOf(key) < 0; });
    var size = Array.isArray(recipe.size) ? recipe.size : [1280, 720], preset = one("#id_size_preset");
    preset.value = all("option", preset).some(function (o) { return o.value === size.join("x"); }) ? size.join("x") : "custom";
    set(one("#id_width"), size[0]); set(one("#id_height"), size[1]);
    ["fps", "format", "crossfade"].forEach(function (key) { set(one("#id_" + key), recipe[key]); });
    if (!recipe.format) one("#id_format").selectedIndex = 0;
    all("[data-clip]", list).forEach(function (row) { row.remove(); });
    (recipe.clips || []).forEach(function (clip, index) {
      var kind = KINDS.filter(function (k) { return clip && k in clip; })[0];
      if (!kind) { dropped.push("clips[" + index + "]"); return; }
      var row = addRow(kind);
      Object.keys(clip).forEach(function (key) { if (!set(rowInput(row, key), clip[key])) dropped.push("clips[" + index + "]." + key); });
      if (kind !== "title") describeTyped(one("[data-picker-field]", row));
    });
    var audio = recipe.audio || {};
    set(one("#id_audio_source"), audio.source || "");
    set(one("#id_audio_volume"), audio.volume != null ? audio.volume : 1);
    set(one("#id_audio_loop"), audio.loop);
    set(one("#id_audio_start"), audio.start != null ? audio.start : 0);
    describeTyped(one("#id_audio_source").closest("[data-picker-field]"));
    showSize();
    return dropped;
  }

  function note(text) {
    var box = one("[data-json-note]", editor);
    box.textContent = text;
    box.hidden = !text;
  }

  function switchTo(next) {
    if (next === "json" && mode.value !== "json") jsonArea.value = JSON.stringify(formToRecipe(), null, 2);
    if (next === "form" && mode.value === "json") {
      var dropped;
      try { dropped = recipeToForm(JSON.parse(jsonArea.value)); }
      catch (error) { note("The JSON cannot become the form: " + error.message); return; }
      note(dropped.length ? "The form has no field for: " + dropped.join(", ") + " (left out)." : "");
    } else {
      note("");
    }
    mode.value = next;
    editor.dataset.mode = next;
    all("[data-editor-tab]", editor).forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.dataset.editorTab === next));
    });
  }

  function showSize() {
    var preset = one("#id_size_preset"), custom = preset.value === "custom";
    one(".form-row.field-width").hidden = !custom;
    if (!custom) { set(one("#id_width"), preset.value.split("x")[0]); set(one("#id_height"), preset.value.split("x")[1]); }
  }

  // --- wiring ----------------------------------------------------------------------------------

  function onClick(event) {
    var button = event.target.closest("button");
    if (!button || !editor.contains(button)) return;
    var row = button.closest("[data-clip]");
    if (button.dataset.addClip) one("input:not([type=hidden])", addRow(button.dataset.addClip)).focus();
    else if (button.hasAttribute("data-clip-up")) moveRow(row, true);
    else if (button.hasAttribute("data-clip-down")) moveRow(row, false);
    else if (button.hasAttribute("data-clip-remove")) { row.remove(); renumber(); }
    else if (button.hasAttribute("data-pick")) openPicker(button.closest("[data-picker-field]"));
    else if (button.dataset.editorTab) switchTo(button.dataset.editorTab);
  }

  document.addEventListener("DOMContentLoaded", function () {
    editor = one("[data-render-editor]");
    if (!editor) return;
    list = one("[data-clip-list]", editor);
    total = one('[name="clips-TOTAL_FORMS"]', editor);
    mode = one("#id_editor");
    jsonArea = one("#id_recipe_json");
    dialog = one("[data-picker-dialog]");
    var box = document.createElement("p");
    box.className = "errornote";
    box.dataset.jsonNote = "";
    box.hidden = true;
    one(".render-tabs", editor).after(box);
    editor.addEventListener("click", onClick);
    editor.addEventListener("change", function (event) {
      var field = event.target.closest("[data-picker-field]");
      if (field && event.target.matches("input")) describeTyped(field);
      if (event.target.id === "id_size_preset") showSize();
    });
    // Enter in a field must not save (and start) the render half-filled.
    editor.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.matches("input")) event.preventDefault();
    });
    one("[data-picker-close]", dialog).addEventListener("click", function () { dialog.close(); });
    one("[data-picker-search]", dialog).addEventListener("input", function (event) {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(function () { search(event.target.value); }, 200);
    });
    mode.value = mode.value || "form";
    editor.dataset.mode = mode.value;
    switchTo(mode.value);
    showSize();
    renumber();
  });
})();
