/*! Leadpath lead form: <script src=".../leadpath.js" data-workspace="WORKSPACE_ID" async></script>
 * Remembers the first touch and the last campaign touch (UTM tags, click ids, referrer, landing page) for 90 days,
 * sends <form data-leadpath> (or the form it renders into <div data-leadpath-form>) to Leadpath, and keeps every lead
 * in the browser until Leadpath has answered for it. No dependencies; the only global is window.Leadpath.
 * Optional: data-api="https://leads.example.com" when the API is not where this file is served from; data-style on
 * the form, its <div data-leadpath-form> or this <script> gives the form a default look (leadpath-form.css, served
 * beside this file) for a page with no styles of its own. */
(function (window, document) {
  "use strict";
  if (window.Leadpath && window.Leadpath.submit) { return; }
  var script = document.currentScript || document.querySelector("script[data-workspace][src*='leadpath']");
  if (!script) { return; }
  var workspace = script.getAttribute("data-workspace");
  var api = (script.getAttribute("data-api") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var endpoint = api + "/api/leads";
  var originCheck = endpoint + "/origin?userAccountId=" + encodeURIComponent(workspace || "");
  var DAY = 864e5, KEEP = 90 * DAY, STATE = "leadpath", OUTBOX = "leadpath_outbox", HONEYPOT = "lp_website";
  var TAGS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "yclid", "fbclid"];
  var FIRST = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "landing_page"];
  var FIELDS = {
    name: /^(name|fio|full_?name|your_?name)$/i, phone: /^(phone|tel|telephone|mobile)$/i,
    email: /^(e-?mail|your_?email)$/i, message: /^(message|comment|comments|question|text)$/i
  };
  // Texts in the language of the form's data-lang, the script's data-lang, the page's <html lang>, else the browser's.
  var TEXTS = {
    ru: { name: "Имя", phone: "Телефон", email: "E-mail", message: "Сообщение", send: "Отправить",
      sending: "Отправляем…", need: "Укажите телефон или e-mail.", ok: "Спасибо! Заявка принята.",
      queued: "Спасибо! Заявка сохранена и уйдёт, как только появится связь.",
      soon: "Спасибо! Заявка сохранена и уйдёт через несколько минут.",
      held: "Заявка ещё не отправлена: не закрывайте страницу, мы повторим попытку.",
      check: "Проверьте форму: ", failed: "Не удалось отправить заявку.",
      refused: "Этому сайту не разрешено отправлять заявки в это пространство Leadpath. Владелец сайта может " +
        "разрешить его в Leadpath: Настройки → Форма заявки." },
    uk: { name: "Імʼя", phone: "Телефон", email: "E-mail", message: "Повідомлення", send: "Надіслати",
      sending: "Надсилаємо…", need: "Вкажіть телефон або e-mail.", ok: "Дякуємо! Заявку прийнято.",
      queued: "Дякуємо! Заявку збережено, її буде надіслано, щойно зʼявиться звʼязок.",
      soon: "Дякуємо! Заявку збережено, її буде надіслано за кілька хвилин.",
      held: "Заявку ще не надіслано: не закривайте сторінку, ми спробуємо ще раз.",
      check: "Перевірте форму: ", failed: "Не вдалося надіслати заявку.",
      refused: "Цьому сайту не дозволено надсилати заявки до цього простору Leadpath. Власник сайту може " +
        "дозволити його в Leadpath: Налаштування → Форма заявки." },
    en: { name: "Name", phone: "Phone", email: "E-mail", message: "Message", send: "Send", sending: "Sending…",
      need: "Leave a phone number or an e-mail.", ok: "Thank you! Your request has been received.",
      queued: "Thank you! Your request is saved and will be sent as soon as the connection is back.",
      soon: "Thank you! Your request is saved and will be sent within a few minutes.",
      held: "Your request is not sent yet: please keep this page open while we retry.",
      check: "Please check the form: ", failed: "Your request could not be sent.",
      refused: "This site is not allowed to send leads to this workspace. The site owner can allow it in " +
        "Leadpath: Settings → Lead form." }
  };
  function texts(element) {
    var holder = element && element.closest && element.closest("[data-lang]");
    var lang = (holder && holder.getAttribute("data-lang")) || script.getAttribute("data-lang") ||
      document.documentElement.lang || navigator.language || "";
    return TEXTS[lang.slice(0, 2).toLowerCase()] || TEXTS.en;
  }

  function each(list, callback) { Array.prototype.forEach.call(list, callback); }
  function clip(value, length) { return typeof value === "string" ? value.slice(0, length) : ""; }

  // First-party storage: localStorage, else a cookie. write() is true when the value can be read back.
  function cookie(key, raw, age) {
    try {
      if (raw !== undefined) {
        document.cookie = key + "=" + encodeURIComponent(raw) + "; max-age=" + age + "; path=/; SameSite=Lax";
      }
      var match = document.cookie.match(new RegExp("(?:^|; )" + key + "=([^;]*)"));
      return match ? decodeURIComponent(match[1]) : null;
    } catch (e) { return null; }
  }
  function read(key) {
    var raw = null;
    try { raw = window.localStorage.getItem(key); } catch (e) { /* blocked */ }
    try { return JSON.parse(raw === null ? cookie(key) : raw); } catch (e) { return null; }
  }
  function write(key, value) {
    var raw = JSON.stringify(value), storage;
    try {
      storage = window.localStorage;
      try { storage.setItem(key, raw); } catch (e) { storage.removeItem(key); storage.setItem(key, raw); }
      if (cookie(key) !== null) { cookie(key, "", 0); }
      return true;
    } catch (e) { /* blocked, or full even without our old value, which is gone so that read() finds the cookie */ }
    if (cookie(key, raw, KEEP / 1000) === raw) { return true; }
    cookie(key, "", 0);
    return false;
  }

  // The stored touches that are well-formed: {first, last}, each {utm_*, click ids, referrer, landing_page, ts}.
  function touches() {
    var saved = read(STATE) || {}, state = {};
    ["first", "last"].forEach(function (key) {
      var touch = saved[key];
      if (touch && touch.ts > 1e12 && touch.ts < 4e12) { state[key] = touch; }
    });
    return state;
  }
  // Another site refers unless one host, without "www.", ends with the other (shop.com, www.shop.com, pay.shop.com).
  function site(host) { return "." + host.replace(/^www\./, ""); }
  function external(referrer) {
    try {
      var from = site(new URL(referrer).hostname), here = site(location.hostname);
      return from !== "." && !from.endsWith(here) && !here.endsWith(from);
    } catch (e) { return false; }
  }
  // This page view is the last touch when it is tagged, or referred by another site unless this session was tagged.
  function remember() {
    var state = touches(), params = new URLSearchParams(location.search), now = Date.now(), tagged = false, session;
    var touch = { referrer: external(document.referrer) ? clip(document.referrer, 2000) : "",
      landing_page: clip(location.href, 2000), ts: now };
    TAGS.forEach(function (key) {
      if (params.get(key)) { touch[key] = clip(params.get(key), 200); tagged = true; }
    });
    try {
      if (tagged) { window.sessionStorage.setItem(STATE, "1"); }
      session = window.sessionStorage.getItem(STATE);
    } catch (e) { /* blocked */ }
    if (!state.first || now - state.first.ts > KEEP) { state.first = touch; }
    if (state.last && now - state.last.ts > KEEP) { delete state.last; }
    if (tagged || (touch.referrer && !session)) { state.last = touch; }
    write(STATE, state);
    return state;
  }

  function newKey() {
    var bytes = new Uint8Array(16), hex = "";
    if (window.crypto && crypto.getRandomValues) { crypto.getRandomValues(bytes); }
    for (var i = 0; i < 16; i++) { hex += ((bytes[i] || Math.random() * 256) | 256).toString(16).slice(1); }
    return hex;
  }

  function copy(from, to, keys) {
    keys.forEach(function (key) {
      var value = clip(from[key], /^(referrer|landing_page)$/.test(key) ? 2000 : 200);
      if (value) { to[key] = value; }
    });
  }
  // The API body: the visitor's fields, the last campaign touch (else the first visit), the first touch.
  function build(fields) {
    var state = touches();
    if (!state.first) { state = remember(); }
    var last = state.last || state.first, first = state.first;
    var body = { userAccountId: workspace, idempotency_key: newKey(), first_touch: {} };
    ["name", "phone", "email", "message", HONEYPOT].forEach(function (key) {
      if (fields[key]) { body[key] = String(fields[key]); }
    });
    if (fields.fields) { body.fields = fields.fields; }
    copy(last, body, TAGS.concat("referrer", "landing_page"));
    copy(first, body.first_touch, FIRST);
    body.first_touch.timestamp = new Date(first.ts).toISOString();
    return body;
  }

  // One attempt, never rejected: {final: the answer stands (2xx, or 4xx but 408/425/429), status, data, wait: ms}.
  function post(body) {
    var control = window.AbortController ? new AbortController() : {};
    var timeout = setTimeout(function () { if (control.abort) { control.abort(); } }, 15000);
    return fetch(endpoint, {
      method: "POST", mode: "cors", credentials: "omit", body: JSON.stringify(body), signal: control.signal,
      headers: { "Content-Type": "application/json", "Idempotency-Key": body.idempotency_key }
    }).then(function (response) {
      var status = response.status;
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: status, data: data || {}, final: status < 500 && !/^(408|425|429)$/.test(status),
          wait: response.headers.get("Retry-After") * 1000 || 0 };
      });
    }).catch(refusedOrLost).then(function (answer) {
      clearTimeout(timeout);
      return answer;
    });
  }
  // A failed fetch is a lost connection, a proxy's error page without CORS headers, or Leadpath's 403 to a site
  // the workspace does not allow (no page of that site may read it). Only Leadpath's own readable answer to "may
  // this page send leads?" makes it a refusal, which is final; anything else keeps the lead for a retry.
  function refusedOrLost() {
    var lost = { data: {}, wait: 0 };
    return fetch(originCheck, { mode: "cors", credentials: "omit" }).then(function (response) {
      return response.ok ? response.json() : {};
    }).then(function (data) {
      return data && data.allowed === false ? { status: 403, data: { refused: true }, final: true, wait: 0 } : lost;
    }).catch(function () { return lost; });
  }

  // The outbox: each lead is stored before it is sent and dropped once Leadpath has answered for it; where storage
  // fails it is held in this page's memory. Item: {body, at, n: failed attempts, next: time of the next attempt}.
  var held = [], sending = {}, timer;
  function load() {
    var stored = read(OUTBOX), seen = {};
    return held.concat(Array.isArray(stored) ? stored : []).filter(function (item) {
      var key = item && item.body && item.body.idempotency_key;
      if (typeof key !== "string" || seen[key] || !(item.at > 0)) { return false; }
      seen[key] = true;
      item.n = +item.n || 0;
      item.next = +item.next || 0;
      return true;
    });
  }
  function save(box) {
    box = box.slice(-20);
    held = write(OUTBOX, box) ? [] : box;
    return !held.length;
  }
  function put(item, keep) {
    var key = item.body.idempotency_key;
    return save(load().filter(function (other) { return other.body.idempotency_key !== key; })
      .concat(keep ? [item] : []));
  }
  function backoff(n) { return Math.min(2000 * Math.pow(2, n), 3e5); }
  function send(item) {
    var key = item.body.idempotency_key;
    sending[key] = true;
    item.next = Date.now() + backoff(item.n);
    put(item, true);
    return post(item.body).then(function (answer) {
      delete sending[key];
      if (!answer.final) {
        item.n++;
        item.next = Date.now() + Math.max(backoff(item.n), Math.min(answer.wait, DAY));
      }
      answer.saved = put(item, !answer.final);
      wake();
      return answer;
    });
  }
  function flush(force) {
    if (navigator.onLine === false) { return; }
    var box = load(), due = force === true ? Infinity : Date.now(), live = box.filter(function (item) {
      return Date.now() - item.at < 30 * DAY && item.n < 100;
    });
    if (live.length < box.length) { save(live); }
    live.forEach(function (item) {
      if (!sending[item.body.idempotency_key] && item.next <= due) { send(item); }
    });
    wake();
  }
  function wake() {
    var next = Infinity;
    load().forEach(function (item) {
      if (!sending[item.body.idempotency_key]) { next = Math.min(next, item.next); }
    });
    clearTimeout(timer);
    if (next < Infinity) { timer = setTimeout(flush, Math.min(Math.max(next - Date.now(), 1000), 3e5)); }
  }

  function submit(fields) {
    return send({ body: build(fields || {}), at: Date.now(), n: 0 }).then(function (answer) {
      var data = answer.data;
      if (!answer.final) { return { ok: true, queued: true, saved: answer.saved, status: answer.status }; }
      return answer.status < 300 ? { ok: true, leadId: data.leadId }
        : { ok: false, status: answer.status, refused: !!data.refused, message: data.message || texts().failed,
          errors: data.errors || {} };
    });
  }

  function inputsOf(form) {
    var found = {};
    each(form.elements, function (element) {
      if (!element.name || element.disabled || /^(submit|button|reset|image|checkbox|radio|file)$/.test(element.type)) {
        return;
      }
      if (element.name === HONEYPOT) { found[HONEYPOT] = element; return; }
      for (var key in FIELDS) {
        if (!(found[key] && found[key].value) && (FIELDS[key].test(element.name) ||
            (key === "phone" && element.type === "tel") || (key === "email" && element.type === "email"))) {
          found[key] = element;
          return;
        }
      }
    });
    return found;
  }

  // Every other named input of the form (checked boxes and radios, every chosen option), as the API's "fields":
  // within its bounds (30 names of 64 characters, values of 1000), so a big form is cut rather than refused.
  function extrasOf(form, inputs) {
    var extras = {}, count = 0, own = [];
    for (var key in inputs) { own.push(inputs[key]); }
    each(form.elements, function (element) {
      var name = element.name, values = [];
      if (!name || element.disabled || own.indexOf(element) >= 0 || name.length > 64 ||
          /^(submit|button|reset|image|file|password)$/.test(element.type) || /^(userAccountId|idempotency_key)$/.test(name)) {
        return;
      }
      if (/^(checkbox|radio)$/.test(element.type)) {
        if (!element.checked) { return; }
        values.push(element.value);
      } else if (element.type === "select-multiple") {
        each(element.options, function (option) { if (option.selected) { values.push(option.value); } });
      } else {
        values.push(element.value);
      }
      values = values.map(function (value) { return String(value).trim().slice(0, 1000); })
        .filter(function (value) { return value; });
      if (!values.length) { return; }
      if (!(name in extras)) {
        if (count >= 30) { return; }
        count += 1;
        extras[name] = [];
      }
      extras[name] = extras[name].concat(values).slice(0, 20);
    });
    for (var field in extras) {
      if (extras[field].length === 1) { extras[field] = extras[field][0]; }
    }
    return count ? extras : null;
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

  // The default look: the stylesheet beside this file, linked once, for forms that ask for it (data-style).
  function style(form) {
    if (!(form.closest("[data-style]") || script.hasAttribute("data-style"))) { return; }
    form.classList.add("leadpath-styled");
    if (document.querySelector("link[data-leadpath-style]")) { return; }
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("../css/leadpath-form.css", script.src).href;
    link.setAttribute("data-leadpath-style", "");
    (document.head || document.documentElement).appendChild(link);
  }

  function enhance(form) {
    var status = form.querySelector("[data-leadpath-status]");
    style(form);
    addHoneypot(form);
    if (!status) {
      status = form.appendChild(document.createElement("p"));
      status.className = "leadpath-status";
      status.setAttribute("data-leadpath-status", "");
    }
    if (!status.getAttribute("role")) {
      status.setAttribute("role", "status");
      status.setAttribute("aria-live", "polite");
    }
    return status;
  }

  function say(status, kind, text) {
    status.classList.add("leadpath-status");
    status.classList.toggle("leadpath-ok", kind === "ok");
    status.classList.toggle("leadpath-error", kind === "error");
    status.textContent = text;
  }

  function describe(input, id) {
    var ids = (input.getAttribute("aria-describedby") || "").replace(/(^|\s)leadpath-error-\w+/g, "");
    ids = (ids + " " + id).trim();
    if (ids) { input.setAttribute("aria-describedby", ids); } else { input.removeAttribute("aria-describedby"); }
  }
  function mark(input, message) {
    var note = document.createElement("span"), anchor = input.closest("label") || input;
    note.id = "leadpath-error-" + newKey().slice(0, 8);
    note.className = "leadpath-field-error";
    note.textContent = message;
    anchor.parentNode.insertBefore(note, anchor.nextSibling);
    input.setAttribute("aria-invalid", "true");
    describe(input, note.id);
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-leadpath]")) { return; }
    event.preventDefault();
    if (form.getAttribute("aria-busy")) { return; }
    var status = enhance(form), inputs = inputsOf(form), fields = {}, button = form.querySelector("[type=submit]");
    var TEXT = texts(form);
    for (var key in inputs) { fields[key] = inputs[key].value; }
    var extras = extrasOf(form, inputs);
    if (extras) { fields.fields = extras; }
    each(form.querySelectorAll(".leadpath-field-error"), function (note) { note.parentNode.removeChild(note); });
    each(form.querySelectorAll("[aria-invalid]"), function (input) {
      input.removeAttribute("aria-invalid");
      describe(input, "");
    });
    form.setAttribute("aria-busy", "true");
    if (button) { button.disabled = true; }
    say(status, "", TEXT.sending);
    submit(fields).then(function (result) {
      form.removeAttribute("aria-busy");
      if (button) { button.disabled = false; }
      if (result.ok) {
        form.reset();
        say(status, "ok", !result.queued ? form.getAttribute("data-success") || TEXT.ok
          : !result.saved ? TEXT.held : result.status ? TEXT.soon : TEXT.queued);
        return;
      }
      var problems = [], invalid;
      for (var name in result.errors) {
        if (inputs[name]) { mark(inputs[name], result.errors[name]); }
        if (problems.indexOf(result.errors[name]) < 0) { problems.push(result.errors[name]); }
      }
      say(status, "error", problems.length ? TEXT.check + problems.join(" ") : result.refused ? TEXT.refused
        : result.message);
      if ((invalid = form.querySelector("[aria-invalid=true]"))) { invalid.focus(); }
    });
  }

  function render(container) {
    if (container.querySelector("form")) { return; }
    var form = document.createElement("form"), hint = document.createElement("p"), id = "leadpath-" + newKey().slice(0, 6);
    var TEXT = texts(container);
    form.className = "leadpath-form";
    form.setAttribute("data-leadpath", "");
    form.noValidate = true;
    hint.className = "leadpath-hint";
    hint.id = id + "-hint";
    hint.textContent = container.getAttribute("data-hint") || TEXT.need;
    form.appendChild(hint);
    [["name", "text", "name"], ["phone", "tel", "tel"], ["email", "email", "email"], ["message"]].forEach(function (spec) {
      var row = document.createElement("div"), label = document.createElement("label");
      var input = document.createElement(spec[1] ? "input" : "textarea");
      row.className = "leadpath-field";
      label.htmlFor = input.id = id + "-" + spec[0];
      label.textContent = container.getAttribute("data-label-" + spec[0]) || TEXT[spec[0]];
      input.name = spec[0];
      if (spec[1]) { input.type = spec[1]; input.autocomplete = spec[2]; } else { input.rows = 3; }
      if (spec[0] === "phone" || spec[0] === "email") { input.setAttribute("aria-describedby", hint.id); }
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
  }

  // Once per browser (marked for 90 days): a beacon telling Leadpath the snippet runs on a site, for the setup
  // checklist's installation check. The page never waits for it, and nothing is read back.
  function announce() {
    var mark = "leadpath_seen_" + workspace;
    if (!workspace || read(mark) || !navigator.sendBeacon) { return; }
    if (navigator.sendBeacon(api + "/api/snippet/seen/" + encodeURIComponent(workspace), "")) { write(mark, 1); }
  }

  function scan() {
    each(document.querySelectorAll("[data-leadpath-form]"), render);
    each(document.querySelectorAll("form[data-leadpath]"), enhance);
  }

  window.Leadpath = { submit: submit, scan: scan, flush: flush, touches: touches };
  document.addEventListener("submit", onSubmit, true);
  window.addEventListener("online", function () { flush(true); });
  try {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", scan); } else { scan(); }
    remember();
    flush();
    announce();
  } catch (e) { /* the host page never sees an exception of ours */ }
})(window, document);
