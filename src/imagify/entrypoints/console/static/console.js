// Imagify console: uploads with progress, drag and drop, "load more", copy, height chips.
"use strict";
(function () {
  const csrf = document.querySelector("main")?.dataset.csrf || "";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function size(bytes) {
    const units = ["bytes", "KB", "MB", "GB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return unit ? value.toFixed(1) + " " + units[unit] : bytes + " bytes";
  }

  function card(image) {
    const li = el("li", { class: "tile" });
    const link = el("a", { href: image.href, class: "thumb" });
    if (image.thumbnail) link.append(el("img", { src: image.thumbnail, alt: image.filename }));
    else link.append(el("span", { class: "placeholder" }, "No preview in your tier"));
    const meta = el("div", { class: "meta" });
    meta.append(el("a", { href: image.href, class: "name" }, image.filename),
      el("span", {}, size(image.size) + " · " + image.width + "×" + image.height),
      el("time", {}, image.created_at));
    li.append(link, meta);
    return li;
  }

  // One XMLHttpRequest per file: each has its own progress bar and its own answer.
  function upload(file, list, grid) {
    const row = el("li", { class: "upload" });
    const bar = el("progress", { max: "100", value: "0", "aria-label": "Upload of " + file.name });
    const status = el("span", { class: "status" }, "Uploading…");
    row.append(el("span", { class: "file", title: file.name }, file.name), bar, status);
    list.append(row);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/console/images");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 201 && body) {
        bar.value = 100;
        status.className = "status done";
        status.textContent = "Uploaded";
        document.getElementById("empty")?.remove();
        grid.prepend(card(body));
      } else {
        row.classList.add("failed");
        status.className = "status error";
        status.setAttribute("role", "alert");
        status.textContent = (body && body.detail) || "The upload failed (HTTP " + xhr.status + ").";
      }
    });
    xhr.addEventListener("error", () => {
      status.className = "status error";
      status.textContent = "The upload failed: the server could not be reached.";
    });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  }

  const drop = document.getElementById("drop");
  if (drop) {
    const list = document.getElementById("uploads");
    const grid = document.getElementById("grid");
    const picker = document.getElementById("files");
    const send = (files) => { for (const f of files) upload(f, list, grid); };
    picker.addEventListener("change", () => { send(picker.files); picker.value = ""; });
    // The whole page is a drop target; the panel shows where it lands.
    document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
    document.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) send(e.dataTransfer.files);
    });
  }

  // "Load more": the next page's tiles appended in place (a plain link without JS).
  document.addEventListener("click", async (e) => {
    const more = e.target.closest("#more");
    if (!more) return;
    e.preventDefault();
    more.textContent = "Loading…";
    const response = await fetch(more.href, { credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const grid = document.getElementById("grid");
    page.querySelectorAll("#grid > li").forEach((li) => grid.append(document.adoptNode(li)));
    const next = page.getElementById("more");
    if (next) { more.href = next.href; more.textContent = "Load more"; } else more.parentElement.remove();
  });

  // Copy buttons.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.querySelector(button.dataset.copy);
      input.select();
      try { await navigator.clipboard.writeText(input.value); } catch (_) { document.execCommand("copy"); }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  });

  // Tier heights as chips: type a number, press Enter or Add.
  const heightInput = document.getElementById("new-height");
  if (heightInput) {
    const chips = document.getElementById("heights");
    const addButton = document.getElementById("add-height");
    addButton.hidden = false;
    const add = () => {
      if (!heightInput.value) return;
      if (!heightInput.checkValidity()) { heightInput.reportValidity(); return; }
      const value = String(parseInt(heightInput.value, 10));
      const existing = chips.querySelector('input[value="' + value + '"]');
      if (existing) existing.checked = true;
      else {
        const label = el("label", { class: "chip toggle" });
        label.append(el("input", { type: "checkbox", name: "height", value: value, checked: "" }), " " + value + " px");
        chips.append(label);
      }
      heightInput.value = "";
      heightInput.focus();
    };
    addButton.addEventListener("click", add);
    heightInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); add(); } });
  }
})();
