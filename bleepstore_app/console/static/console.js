// BleepStore console: confirmations, and uploads straight to the S3 API on URLs the
// console presigns for the signed-in user (multipart above PART_SIZE, with progress).
"use strict";
const PART_SIZE = 8 * 1024 * 1024;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const base = location.pathname.startsWith("/-/console") ? "/-/console" : "/console";

document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!confirm(form.dataset.confirm)) event.preventDefault();
  });
});

async function presign(method, bucket, key, query) {
  const response = await fetch(base + "/api/presign", {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify({method, bucket, key, query: query || {}}),
  });
  if (!response.ok) throw new Error("presign refused: " + response.status);
  return (await response.json()).url;
}

function send(method, url, body, onProgress) {
  // XMLHttpRequest, not fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.upload.onprogress = (e) => onProgress && onProgress(e.loaded);
    xhr.onload = () => (xhr.status < 300 ? resolve(xhr) : reject(new Error(method + " " + xhr.status + ": " +
                                                                         xhr.responseText.slice(0, 300))));
    xhr.onerror = () => reject(new Error(method + " failed"));
    xhr.send(body);
  });
}

function xmlText(text, tag) {
  const node = new DOMParser().parseFromString(text, "application/xml").getElementsByTagName(tag)[0];
  return node ? node.textContent : null;
}

function escapeXml(text) {
  return text.replace(/[<>&"']/g, (c) => ({"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;"})[c]);
}

async function upload(bucket, key, file, bar) {
  const progress = (done) => { bar.value = done; };
  bar.max = file.size || 1;
  if (file.size <= PART_SIZE) {
    await send("PUT", await presign("PUT", bucket, key), file, progress);
    return;
  }
  const created = await send("POST", await presign("POST", bucket, key, {uploads: ""}), null);
  const uploadId = xmlText(created.responseText, "UploadId");
  const parts = [];
  try {
    for (let number = 1, offset = 0; offset < file.size; number++, offset += PART_SIZE) {
      const url = await presign("PUT", bucket, key, {partNumber: String(number), uploadId});
      const sent = await send("PUT", url, file.slice(offset, offset + PART_SIZE), (n) => progress(offset + n));
      parts.push(`<Part><PartNumber>${number}</PartNumber><ETag>${escapeXml(sent.getResponseHeader("ETag"))}</ETag></Part>`);
    }
    const body = `<CompleteMultipartUpload>${parts.join("")}</CompleteMultipartUpload>`;
    const done = await send("POST", await presign("POST", bucket, key, {uploadId}), body);
    if (xmlText(done.responseText, "Error") !== null || xmlText(done.responseText, "Code") !== null) {
      throw new Error("complete failed: " + done.responseText.slice(0, 300));
    }
  } catch (error) {
    await send("DELETE", await presign("DELETE", bucket, key, {uploadId}), null).catch(() => {});
    throw error;
  }
}

const zone = document.getElementById("drop-zone");
if (zone) {
  const list = document.getElementById("uploads");
  const start = async (files) => {
    let failed = false;
    for (const file of files) {
      const row = document.createElement("div");
      row.className = "upload";
      row.innerHTML = `<span class="name"></span><progress value="0"></progress><span class="state">uploading</span>`;
      row.querySelector(".name").textContent = file.name;
      list.appendChild(row);
      try {
        await upload(zone.dataset.bucket, zone.dataset.prefix + file.name, file, row.querySelector("progress"));
        row.querySelector(".state").textContent = "done";
        row.classList.add("done");
      } catch (error) {
        failed = true;
        row.querySelector(".state").textContent = "failed: " + error.message;
        row.classList.add("failed");
      }
    }
    if (!failed) location.reload();
  };
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); start(e.dataTransfer.files); });
  document.getElementById("file-input").addEventListener("change", (e) => start(e.target.files));
}
