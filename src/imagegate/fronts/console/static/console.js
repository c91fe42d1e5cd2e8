// imagegate console: small progressive enhancements; every page works without them.
// Live price quotes, a busy indicator, task progress polling and the mask painter for edits.
"use strict";

(function () {
  function csrf() {
    var main = document.getElementById("main");
    return main ? main.getAttribute("data-csrf") || "" : "";
  }

  // --- the price quote, refreshed as the form changes --------------------------------
  function setupQuote(form) {
    var output = document.getElementById("quote");
    var url = form.getAttribute("data-quote-url");
    if (!output || !url) return;
    var timer = null;
    function refresh() {
      var query = new URLSearchParams();
      ["tab", "mode", "model", "size", "n", "quality"].forEach(function (name) {
        var field = form.elements.namedItem(name);
        if (field && field.value) query.set(name, field.value);
      });
      query.set("prompt", "x");
      fetch(url + "?" + query.toString(), { credentials: "same-origin", headers: { "x-csrf-token": csrf() } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (body && body.quote) output.textContent = body.quote; })
        .catch(function () { /* the last quote stays */ });
    }
    form.addEventListener("input", function (event) {
      if (event.target && event.target.name === "prompt") return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 200);
    });
    var model = form.elements.namedItem("model");
    if (model) {
      model.addEventListener("change", function () {
        // Another model has other sizes and qualities: show its own form.
        var query = new URLSearchParams();
        ["tab", "mode", "model", "prompt"].forEach(function (name) {
          var field = form.elements.namedItem(name);
          if (field && field.value) query.set(name, field.value);
        });
        window.location.assign("/console/playground?" + query.toString());
      });
    }
  }

  // --- busy indicator for long work --------------------------------------------------
  function setupBusy(form) {
    form.addEventListener("submit", function () {
      var busy = form.querySelector(".busy");
      if (busy) busy.hidden = false;
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; button.textContent = "Working…"; }
    });
  }

  // --- task progress -----------------------------------------------------------------
  function setupTaskProgress() {
    var bar = document.getElementById("task-progress");
    if (!bar) return;
    var url = bar.getAttribute("data-status-url");
    var status = document.getElementById("task-status");
    function poll() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) { setTimeout(poll, 2000); return; }
          bar.value = body.progress;
          bar.textContent = body.progress + "%";
          if (status) status.textContent = body.status;
          if (body.terminal) window.location.reload();
          else setTimeout(poll, 700);
        })
        .catch(function () { setTimeout(poll, 2000); });
    }
    setTimeout(poll, 400);
  }

  // --- the mask painter (OpenAI edits: transparent mask pixels mark what to change) --
  function setupPainter(form) {
    var file = document.getElementById("image");
    var canvas = document.getElementById("mask-painter");
    var maskInput = document.getElementById("mask");
    if (!file || !canvas || !maskInput) return;
    var box = canvas.closest(".painter");
    var brush = document.getElementById("brush");
    var view = canvas.getContext("2d");
    var mask = document.createElement("canvas");
    var maskCtx = mask.getContext("2d");
    var image = new Image();
    var painted = false;
    var drawing = false;
    var last = null;

    function reset() {
      canvas.width = mask.width = image.naturalWidth;
      canvas.height = mask.height = image.naturalHeight;
      view.globalAlpha = 1;
      view.drawImage(image, 0, 0);
      maskCtx.globalCompositeOperation = "source-over";
      maskCtx.fillStyle = "#ffffff";
      maskCtx.fillRect(0, 0, mask.width, mask.height);
      painted = false;
    }
    file.addEventListener("change", function () {
      if (!file.files || !file.files[0]) return;
      image.onload = function () { box.hidden = false; reset(); };
      image.src = URL.createObjectURL(file.files[0]);
    });
    function point(event) {
      var rect = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - rect.left) * canvas.width / rect.width,
        y: (event.clientY - rect.top) * canvas.height / rect.height
      };
    }
    function stroke(from, to) {
      var size = (brush ? Number(brush.value) : 48) * canvas.width / Math.max(1, canvas.getBoundingClientRect().width);
      [[view, "rgba(250, 82, 82, 0.45)", "source-over"], [maskCtx, "#000", "destination-out"]].forEach(function (spec) {
        var ctx = spec[0];
        ctx.globalCompositeOperation = spec[2];
        ctx.strokeStyle = spec[1];
        ctx.lineWidth = size;
        ctx.lineCap = "round";
        ctx.beginPath();
        ctx.moveTo(from.x, from.y);
        ctx.lineTo(to.x + 0.01, to.y);
        ctx.stroke();
      });
      view.globalCompositeOperation = "source-over";
      painted = true;
    }
    canvas.addEventListener("pointerdown", function (event) {
      drawing = true; last = point(event); stroke(last, last);
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var next = point(event); stroke(last, next); last = next;
    });
    ["pointerup", "pointercancel"].forEach(function (name) {
      canvas.addEventListener(name, function () { drawing = false; });
    });
    // Keyboard: arrow keys paint from the centre in steps of a tenth of the image.
    var cursor = null;
    canvas.addEventListener("keydown", function (event) {
      var steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      var step = steps[event.key];
      if (!step || !image.naturalWidth) return;
      event.preventDefault();
      if (!cursor) cursor = { x: canvas.width / 2, y: canvas.height / 2 };
      var next = {
        x: Math.min(canvas.width, Math.max(0, cursor.x + step[0] * canvas.width / 10)),
        y: Math.min(canvas.height, Math.max(0, cursor.y + step[1] * canvas.height / 10))
      };
      stroke(cursor, next);
      cursor = next;
    });
    var clear = document.getElementById("clear-mask");
    if (clear) clear.addEventListener("click", function () { if (image.naturalWidth) { reset(); cursor = null; } });

    form.addEventListener("submit", function (event) {
      if (!painted || form.dataset.masked === "1") return;
      event.preventDefault();
      mask.toBlob(function (blob) {
        var transfer = new DataTransfer();
        transfer.items.add(new File([blob], "mask.png", { type: "image/png" }));
        maskInput.files = transfer.files;
        form.dataset.masked = "1";
        form.requestSubmit();
      }, "image/png");
    }, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.generate");
    if (form) {
      setupPainter(form);
      setupQuote(form);
      setupBusy(form);
    }
    setupTaskProgress();
  });
})();
