/*! Leadpath: <script src=".../leadpath.js" data-workspace="WORKSPACE_ID" async></script>
 * Touches, visits and <form data-leadpath> leads; attributes and rules: docs/api.md, "The snippet". */
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
  var VISIT = "leadpath_visit", IDLE = 18e5;
  // data-consent: nothing stored or sent but leads until Leadpath.consent() or a "leadpath:consent" event.
  var consent = !script.hasAttribute("data-consent") || window.leadpathConsent === true;
  var TAGS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "yclid", "fbclid"];
  var FIRST = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "landing_page"];
  var FIELDS = {
    name: /^(name|fio|full_?name|your_?name)$/i, phone: /^(phone|tel|telephone|mobile)$/i,
    email: /^(e-?mail|your_?email)$/i, message: /^(message|comment|comments|question|text)$/i
  };
  // The form's data-lang, the script's, <html lang>, else the browser's.
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

  // localStorage, else a cookie. write(): true when the value can be read back.
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
    if (!consent) { return false; }
    try {
      storage = window.localStorage;
      try { storage.setItem(key, raw); } catch (e) { storage.removeItem(key); storage.setItem(key, raw); }
      if (cookie(key) !== null) { cookie(key, "", 0); }
      return true;
    } catch (e) { /* blocked, or full: our old value is gone, read() finds the cookie */ }
    if (cookie(key, raw, KEEP / 1000) === raw) { return true; }
    cookie(key, "", 0);
    return false;
  }

  // {first, last}, each {utm_*, click ids, referrer, landing_page, ts}, if well-formed.
  function touches() {
    var saved = read(STATE) || {}, state = {};
    ["first", "last"].forEach(function (key) {
      var touch = saved[key];
      if (touch && touch.ts > 1e12 && touch.ts < 4e12) { state[key] = touch; }
    });
    return state;
  }
  // External unless one host, without "www.", ends with the other.
  function site(host) { return "." + host.replace(/^www\./, ""); }
  function external(referrer) {
    try {
      var from = site(new URL(referrer).hostname), here = site(location.hostname);
      return from !== "." && !from.endsWith(here) && !here.endsWith(from);
    } catch (e) { return false; }
  }
  // The last touch: a tagged page, or one referred by another site unless the browsing session was tagged.
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

  // {v: visitor, id: visit, src: source, at: last page view}. A new visit: another source, or 30 min idle.
  function visit() {
    var saved = read(VISIT) || {}, params = new URLSearchParams(location.search), body = {}, now = Date.now(), src;
    var referrer = external(document.referrer) ? clip(document.referrer, 2000) : "", ua = navigator.userAgent;
    TAGS.forEach(function (key) { if (params.get(key)) { body[key] = clip(params.get(key), 200); } });
    src = JSON.stringify(body) + referrer;
    if (!/^[0-9a-f]{32}$/.test(saved.v)) { saved = { v: newKey() }; }
    var fresh = !saved.id || !(now - saved.at < IDLE) || (src !== "{}" && src !== saved.src);
    if (fresh) { saved.id = newKey(); saved.src = src; }
    saved.at = now;
    if (write(VISIT, saved) && fresh) {
      body.userAccountId = workspace;
      body.visitor_id = saved.v;
      body.visit_id = saved.id;
      body.referrer = referrer;
      body.landing_page = clip(location.href, 2000);
      body.device = /iPad|Tablet/i.test(ua) || /Android/.test(ua) && !/Mobile/.test(ua) ||
        /Macintosh/.test(ua) && navigator.maxTouchPoints > 1 ? "tablet" : /Mobi|iPhone|Android/i.test(ua) ? "mobile"
        : "desktop";
      beacon("/api/visits", JSON.stringify(body));
    }
  }
  function beacon(path, data) {
    try {
      if (navigator.sendBeacon(api + path, data)) { return true; }
    } catch (e) { /* none */ }
    if (window.fetch) {
      fetch(api + path, { method: "POST", body: data, keepalive: true, mode: "no-cors", credentials: "omit" })
        .catch(function () {});
    }
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
  // Fields, the last campaign touch (else the first), the first touch, the visit.
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
    var seen = consent && read(VISIT);
    if (seen && seen.id) { body.visitor_id = seen.v; body.visit_id = seen.id; }
    return body;
  }

  // One attempt, never rejected: {final (2xx, 4xx but 408/425/429), status, data, wait: ms}.
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
  // A failed fetch: lost, a proxy's page, or a 403 this page may not read. Only a readable "allowed: false" is final.
  function refusedOrLost() {
    var lost = { data: {}, wait: 0 };
    return fetch(originCheck, { mode: "cors", credentials: "omit" }).then(function (response) {
      return response.ok ? response.json() : {};
    }).then(function (data) {
      return data && data.allowed === false ? { status: 403, data: { refused: true }, final: true, wait: 0 } : lost;
    }).catch(function () { return lost; });
  }

  // The outbox: a lead is kept (stored, else in memory) until answered. {body, at, n: failures, next: time}.
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

  // Other named inputs as "fields", cut to the API's bounds rather than refused.
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

  // data-style: leadpath-form.css, linked once.
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

  // Once per browser: the setup checklist's "snippet seen".
  function announce() {
    var mark = "leadpath_seen_" + workspace;
    if (!workspace || read(mark)) { return; }
    if (beacon("/api/snippet/seen/" + encodeURIComponent(workspace), "")) { write(mark, 1); }
  }
  function start() {
    if (consent) { remember(); visit(); announce(); }
  }
  function agree() {
    if (!consent) { consent = true; start(); }
  }

  function scan() {
    each(document.querySelectorAll("[data-leadpath-form]"), render);
    each(document.querySelectorAll("form[data-leadpath]"), enhance);
  }

  window.Leadpath = { submit: submit, scan: scan, flush: flush, touches: touches, consent: agree };
  document.addEventListener("submit", onSubmit, true);
  document.addEventListener("leadpath:consent", agree);
  window.addEventListener("online", function () { flush(true); });
  try {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", scan); } else { scan(); }
    start();
    flush();
  } catch (e) { /* never the host page's problem */ }
})(window, document);
