// prunner dashboard behaviour that htmx does not cover. Everything here is optional: pages
// work without JavaScript. The CSP allows this file and nothing inline.
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  // "Add variable" clones the last key/value row of a start form.
  document.addEventListener('click', function (e) {
    var btn = e.target.closest && e.target.closest('[data-add-var]');
    if (!btn) return;
    var rows = btn.closest('[data-vars]').querySelectorAll('[data-var-row]');
    var last = rows[rows.length - 1];
    var row = last.cloneNode(true);
    row.querySelectorAll('input').forEach(function (i) { i.value = ''; });
    last.after(row);
    row.querySelector('input').focus();
  });

  // Live log tail: follow (auto-scroll) that a person can pause, and a cap on the lines kept
  // in the page so that long logs do not slow it down.
  function setupLog(panel) {
    var streams = panel.querySelector('[data-log]');
    if (!streams || streams.dataset.ready) return;
    streams.dataset.ready = '1';
    var max = parseInt(streams.dataset.maxLines, 10) || 5000;
    var button = panel.querySelector('[data-follow]');
    var follow = true;

    function setFollow(on) {
      follow = on;
      if (button) {
        button.setAttribute('aria-pressed', on ? 'true' : 'false');
        button.textContent = on ? 'Auto-scroll on' : 'Auto-scroll paused';
      }
      if (on) pres.forEach(scrollDown);
    }
    function scrollDown(pre) { pre.scrollTop = pre.scrollHeight; }
    function atBottom(pre) { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24; }

    var pres = Array.prototype.slice.call(streams.querySelectorAll('pre.logtext'));
    pres.forEach(function (pre) {
      var lines = 0;
      pre.querySelectorAll('span[data-lines]').forEach(function (s) { lines += +s.dataset.lines || 0; });
      var trimmed = pre.parentNode.querySelector('[data-trimmed]');
      var programmatic = false;
      function trim() {
        while (lines > max && pre.children.length > 1) {
          lines -= +pre.firstElementChild.dataset.lines || 0;
          pre.removeChild(pre.firstElementChild);
          if (trimmed) trimmed.hidden = false;
        }
        if (lines > max && pre.firstElementChild) {
          var span = pre.firstElementChild;
          var text = span.textContent;
          var cut = text.split('\n');
          var keep = cut.slice(cut.length - max - 1).join('\n');
          span.textContent = keep;
          span.dataset.lines = String(max);
          lines = max;
          if (trimmed) trimmed.hidden = false;
        }
      }
      trim();
      new MutationObserver(function (records) {
        records.forEach(function (r) {
          r.addedNodes.forEach(function (n) {
            if (n.nodeType === 1 && n.dataset && n.dataset.lines) lines += +n.dataset.lines || 0;
          });
        });
        trim();
        if (follow) { programmatic = true; scrollDown(pre); }
      }).observe(pre, { childList: true });
      pre.addEventListener('scroll', function () {
        if (programmatic) { programmatic = false; return; }
        if (follow && !atBottom(pre)) setFollow(false);
        else if (!follow && atBottom(pre) && pre.scrollHeight > pre.clientHeight) setFollow(true);
      });
      scrollDown(pre);
    });
    if (button) button.addEventListener('click', function () { setFollow(!follow); });
    // Once the stream ended (the task finished), empty panes say "no output" again.
    streams.addEventListener('htmx:sseClose', function () { streams.dataset.live = 'false'; });
  }

  // Times marked data-local (a schedule's next runs) are shown in the viewer's zone; the
  // server writes them in UTC, which is what stays without script.
  var localFormat = window.Intl && Intl.DateTimeFormat ? new Intl.DateTimeFormat(undefined, {
    weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short'
  }) : null;
  function localTimes(root) {
    if (!localFormat) return;
    root.querySelectorAll('time[data-local]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (!isNaN(d)) el.textContent = localFormat.format(d);
    });
  }

  function init(root) {
    var scope = root.querySelectorAll ? root : document;
    scope.querySelectorAll('[data-testid="log"]').forEach(setupLog);
    localTimes(scope);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', function () { init(document); });
  else init(document);
  // A live job page replaces its log panel when another task starts to matter.
  document.addEventListener('htmx:load', function (e) { init(e.target.parentNode || document); });
})();
