/*! Leadpath lead form: <script src=".../leadpath.js" data-workspace="WORKSPACE_ID" async></script>
 * Remembers the first touch and the last campaign touch (UTM tags, click ids, referrer, landing page) for 90 days,
 * sends <form data-leadpath> (or the form it renders into <div data-leadpath-form>) to Leadpath, and keeps a lead
 * that could not be sent in the browser until it can. No dependencies; the only global is window.Leadpath.
 * Optional: data-api="https://leads.example.com" when the API is not where this file is served from. */
(function (window, document) {
  "use strict";
  if (window.Leadpath) { return; }
  var script = document.currentScript || document.querySelector("script[data-workspace][src*='leadpath']");
  if (!script) { return; }
  var workspace = script.getAttribute("data-workspace");
  var endpoint = (script.getAttribute("data-api") || new URL(script.src, location.href).origin)
    .replace(/\/+$/, "") + "/api/leads";
  var DAY = 864e5, KEEP = 90 * DAY, STATE = "leadpath", OUTBOX = "leadpath_outbox", HONEYPOT = "lp_website";
  var TAGS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "yclid", "fbclid"];
  var FIRST = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "landing_page"];
  var FIELDS = {
    name: /^(name|fio|full_?name|your_?name)$/i, phone: /^(phone|tel|telephone|mobile)$/i,
    email: /^(e-?mail|your_?email)$/i, message: /^(message|comment|comments|question|text)$/i
  };
  var ru = /^ru/i.test(document.documentElement.lang || navigator.language || "");
  var TEXT = ru ? {
    name: "Имя", phone: "Телефон", email: "E-mail", message: "Сообщение", send: "Отправить", sending: "Отправляем…",
    ok: "Спасибо! Заявка принята.", queued: "Спасибо! Заявка сохранена и уйдёт, как только появится связь.",
    check: "Проверьте форму: ", failed: "Не удалось отправить заявку."
  } : {
    name: "Name", phone: "Phone", email: "E-mail", message: "Message", send: "Send", sending: "Sending…",
    ok: "Thank you! Your request has been received.",
    queued: "Thank you! Your request is saved and will be sent as soon as the connection is back.",
    check: "Please check the form: ", failed: "Your request could not be sent."
  };

  // First-party storage: localStorage, or a cookie where localStorage is unavailable.
  function read(key) {
    var raw = null, match;
    try { raw = window.localStorage.getItem(key); } catch (e) { /* blocked */ }
    if (raw === null && (match = document.cookie.match(new RegExp("(?:^|; )" + key + "=([^;]*)")))) {
      try { raw = decodeURIComponent(match[1]); } catch (e) { /* foreign cookie */ }
    }
    try { return raw ? JSON.parse(raw) : null; } catch (e) { return null; }
  }
  function write(key, value) {
    var raw = JSON.stringify(value);
    try { window.localStorage.setItem(key, raw); return; } catch (e) { /* blocked or full */ }
    document.cookie = key + "=" + encodeURIComponent(raw) + "; max-age=" + KEEP / 1000 + "; path=/; SameSite=Lax";
  }
  function clip(value, length) { return value ? String(value).slice(0, length) : ""; }

  // This page view as a touch; "direct" when it has no tags and no referrer from another site.
  function pageTouch() {
    var params = new URLSearchParams(location.search), touch = {}, tagged = false, external = false;
    TAGS.forEach(function (key) {
      var value = params.get(key);
      if (value) { touch[key] = clip(value, 200); tagged = true; }
    });
    try { external = !!document.referrer && new URL(document.referrer).hostname !== location.hostname; } catch (e) { /* */ }
    touch.referrer = external ? clip(document.referrer, 2000) : "";
    touch.landing_page = clip(location.href, 2000);
    touch.ts = Date.now();
    touch.direct = !tagged && !external;
    return touch;
  }
  function remember() {
    var state = read(STATE) || {}, touch = pageTouch();
    if (!state.first || touch.ts - state.first.ts > KEEP) { state.first = touch; }
    if (state.last && touch.ts - state.last.ts > KEEP) { state.last = null; }
    if (!touch.direct) { state.last = touch; }
    write(STATE, state);
    return state;
  }

  function newKey() {
    var bytes = new Uint8Array(16), hex = "";
    if (window.crypto && crypto.getRandomValues) { crypto.getRandomValues(bytes); }
    for (var i = 0; i < 16; i++) { hex += ((bytes[i] || Math.random() * 256) | 256).toString(16).slice(1); }
    return hex;
  }

  // The API body: the visitor's fields, the last campaign touch (else the first visit), the first touch.
  function build(fields) {
    var state = read(STATE) || remember(), last = state.last || state.first || {}, first = state.first || last;
    var body = { userAccountId: workspace, idempotency_key: newKey(), first_touch: {} };
    ["name", "phone", "email", "message", HONEYPOT].forEach(function (key) {
      if (fields[key]) { body[key] = String(fields[key]); }
    });
    TAGS.concat("referrer", "landing_page").forEach(function (key) { if (last[key]) { body[key] = last[key]; } });
    FIRST.forEach(function (key) { if (first[key]) { body.first_touch[key] = first[key]; } });
    if (first.ts) { body.first_touch.timestamp = new Date(first.ts).toISOString(); }
    return body;
  }

  // Resolves with {status, ...JSON body}; rejects when the lead should be kept and retried (network, 429, 5xx).
  function post(body) {
    return fetch(endpoint, {
      method: "POST", mode: "cors", credentials: "omit", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "Idempotency-Key": body.idempotency_key }
    }).then(function (response) {
      if (response.status >= 500 || response.status === 429) { throw new Error("HTTP " + response.status); }
      return response.json().catch(function () { return {}; }).then(function (data) {
        data.status = response.status;
        return data;
      });
    });
  }

  // The outbox: leads that could not be sent, retried with backoff on this and later page loads.
  var timer = null, delay = 2000, flushing = false;
  function keep(body) {
    var box = read(OUTBOX) || [];
    box.push({ body: body, at: Date.now() });
    write(OUTBOX, box.slice(-20));
    retryLater();
  }
  function retryLater() {
    if (!timer) { timer = setTimeout(function () { timer = null; flush(); }, delay); }
    delay = Math.min(delay * 2, 300000);
  }
  function drop(key) {
    write(OUTBOX, (read(OUTBOX) || []).filter(function (item) { return item.body.idempotency_key !== key; }));
  }
  function flush() {
    var box = read(OUTBOX) || [];
    if (flushing || !box.length) { return; }
    var item = box[0];
    if (Date.now() - item.at > 30 * DAY) { drop(item.body.idempotency_key); flush(); return; }
    flushing = true;
    post(item.body).then(function () {
      flushing = false;
      delay = 2000;
      drop(item.body.idempotency_key);  // sent, or refused for good (4xx): retrying cannot help
      flush();
    }, function () { flushing = false; retryLater(); });
  }

  function submit(fields) {
    var body = build(fields || {});
    return post(body).then(function (data) {
      return data.status < 300 ? { ok: true, leadId: data.leadId }
        : { ok: false, status: data.status, message: data.message || TEXT.failed, errors: data.errors || {} };
    }, function () {
      keep(body);
      return { ok: true, queued: true };
    });
  }

  function fieldsOf(form) {
    var data = {};
    Array.prototype.forEach.call(form.elements, function (element) {
      if (!element.name || element.disabled || /^(submit|button|checkbox|radio|file)$/.test(element.type)) { return; }
      if (element.name === HONEYPOT) { data[HONEYPOT] = element.value; return; }
      for (var key in FIELDS) {
        if (!data[key] && (FIELDS[key].test(element.name) || (key === "phone" && element.type === "tel") ||
            (key === "email" && element.type === "email"))) { data[key] = element.value; return; }
      }
    });
    return data;
  }

  function addHoneypot(form) {
    if (form.elements[HONEYPOT]) { return; }
    var box = document.createElement("div"), input = document.createElement("input");
    box.setAttribute("aria-hidden", "true");
    box.style.position = "absolute";
    box.style.left = "-10000px";
    box.style.height = "1px";
    box.style.overflow = "hidden";
    input.name = HONEYPOT;
    input.tabIndex = -1;
    input.autocomplete = "off";
    box.appendChild(input);
    form.appendChild(box);
  }

  function enhance(form) {
    if (form.getAttribute("data-leadpath-ready")) { return; }
    form.setAttribute("data-leadpath-ready", "1");
    addHoneypot(form);
    var status = form.querySelector("[data-leadpath-status]");
    if (!status) {
      status = document.createElement("p");
      status.className = "leadpath-status";
      status.setAttribute("role", "status");
      status.setAttribute("aria-live", "polite");
      form.appendChild(status);
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("[type=submit]");
      Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (element) {
        element.removeAttribute("aria-invalid");
      });
      if (button) { button.disabled = true; }
      status.className = "leadpath-status";
      status.textContent = TEXT.sending;
      submit(fieldsOf(form)).then(function (result) {
        if (button) { button.disabled = false; }
        if (result.ok) {
          form.reset();
          status.className = "leadpath-status leadpath-ok";
          status.textContent = result.queued ? TEXT.queued : (form.getAttribute("data-success") || TEXT.ok);
          return;
        }
        var problems = [];
        for (var name in result.errors) {
          var input = form.querySelector("[name='" + name.replace(/[^\w.-]/g, "") + "']");
          if (input) { input.setAttribute("aria-invalid", "true"); }
          if (problems.indexOf(result.errors[name]) < 0) { problems.push(result.errors[name]); }
        }
        status.className = "leadpath-status leadpath-error";
        status.textContent = problems.length ? TEXT.check + problems.join(" ") : result.message;
      });
    });
  }

  function render(container) {
    if (container.querySelector("form")) { return; }
    var form = document.createElement("form"), id = "leadpath-" + newKey().slice(0, 6);
    form.className = "leadpath-form";
    form.noValidate = true;
    [["name", "text", "name"], ["phone", "tel", "tel"], ["email", "email", "email"], ["message"]].forEach(function (spec) {
      var row = document.createElement("div"), label = document.createElement("label");
      var input = document.createElement(spec[1] ? "input" : "textarea");
      row.className = "leadpath-field";
      label.htmlFor = input.id = id + "-" + spec[0];
      label.textContent = container.getAttribute("data-label-" + spec[0]) || TEXT[spec[0]];
      input.name = spec[0];
      if (spec[1]) { input.type = spec[1]; input.autocomplete = spec[2]; } else { input.rows = 3; }
      row.appendChild(label);
      row.appendChild(input);
      form.appendChild(row);
    });
    var button = document.createElement("button");
    button.type = "submit";
    button.className = "leadpath-submit";
    button.textContent = container.getAttribute("data-button") || TEXT.send;
    form.appendChild(button);
    if (container.getAttribute("data-success")) { form.setAttribute("data-success", container.getAttribute("data-success")); }
    container.appendChild(form);
    enhance(form);
  }

  function scan() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-leadpath-form]"), render);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-leadpath]"), enhance);
  }

  remember();
  window.Leadpath = {
    submit: submit, scan: scan, flush: flush,
    touches: function () { return read(STATE) || {}; }
  };
  window.addEventListener("online", flush);
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", scan); } else { scan(); }
  flush();
})(window, document);
