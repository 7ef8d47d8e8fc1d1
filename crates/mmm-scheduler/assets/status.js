// The status page's behaviour: swaps in freshly rendered parts of the page
// every few seconds, and sends the operator's actions to the REST API.
// The server renders and escapes everything; this file only moves it.
(function () {
  'use strict';

  var REFRESH_MS = 2000;
  var TOKEN_KEY = 'mmm-api-token';

  document.documentElement.classList.add('js');

  var token = document.getElementById('token');
  var notice = document.getElementById('notice');
  var rows = document.getElementById('task-rows');
  var framework = document.getElementById('framework');
  var chartBox = document.getElementById('chart-box');
  var renderedAt = document.getElementById('rendered-at');
  var addForm = document.getElementById('add-form');

  token.value = sessionStorage.getItem(TOKEN_KEY) || '';
  token.addEventListener('input', function () {
    sessionStorage.setItem(TOKEN_KEY, token.value.trim());
  });

  function say(text, kind) {
    notice.textContent = text;
    notice.className = kind;
  }

  var timer = null;
  var lastRendered = renderedAt.textContent;

  async function refresh() {
    clearTimeout(timer);
    // A hidden tab does not poll; it catches up when shown again.
    if (document.hidden) return;
    try {
      var r = await fetch('/status/fragments', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      var parts = await r.json();
      framework.innerHTML = parts.framework;
      rows.innerHTML = parts.rows;
      chartBox.innerHTML = parts.chart;
      lastRendered = parts.rendered_at;
      renderedAt.textContent = lastRendered;
      document.body.classList.remove('stale');
    } catch (e) {
      document.body.classList.add('stale');
      renderedAt.textContent = lastRendered + ' (cannot refresh: ' + e.message + ')';
    }
    // An action's refresh may overlap the timer's: keep one timer only.
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }

  // Shows the API's own message: it names what was wrong.
  async function call(path, body, what) {
    var headers = { 'Content-Type': 'application/json' };
    var t = token.value.trim();
    if (t) headers.Authorization = 'Bearer ' + t;
    say(what + '…', 'pending');
    try {
      var r = await fetch(path, { method: 'POST', headers: headers, body: JSON.stringify(body) });
      var text = await r.text();
      var message = text;
      try {
        message = JSON.parse(text).message || text;
      } catch (ignored) {
        // not JSON: show the text as it came
      }
      if (r.ok) {
        say(message, 'ok');
      } else {
        say(what + ' refused (HTTP ' + r.status + '): ' + message, 'error');
      }
    } catch (e) {
      say(what + ' failed: ' + e.message, 'error');
    }
    refresh();
  }

  rows.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-action]');
    if (!button) return;
    var action = button.dataset.action;
    var id = Number(button.dataset.id);
    if (action === 'delete' && !window.confirm('Delete task ' + id + '? It is stopped and forgotten.')) {
      return;
    }
    var verb = action.charAt(0).toUpperCase() + action.slice(1);
    call('/api/' + action, { ids: [id] }, verb + ' task ' + id);
  });

  addForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var body = { amount: Number(document.getElementById('add-amount').value) };
    var topics = document.getElementById('add-topics').value.trim();
    if (topics) body.topics = topics.split(',').map(function (t) { return t.trim(); }).filter(Boolean);
    ['cpus', 'mem'].forEach(function (key) {
      var v = document.getElementById('add-' + key).value.trim();
      if (v) body[key] = Number(v);
    });
    call('/api/add', body, 'Add');
  });

  document.addEventListener('visibilitychange', refresh);
  timer = setTimeout(refresh, REFRESH_MS);
})();
