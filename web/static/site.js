/* Small progressive enhancements; every page works without them. */
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  // Sort and page-size selects apply at once.
  document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
    select.addEventListener('change', function () { select.form.submit(); });
  });

  // Search suggestions from /api/suggest into the input's <datalist> (native, accessible).
  document.querySelectorAll('input[data-suggest]').forEach(function (input) {
    var list = document.getElementById(input.getAttribute('list'));
    var timer = null;
    var last = '';
    if (!list) { return; }
    input.addEventListener('input', function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 1 || q === last) { return; }
      timer = setTimeout(function () {
        last = q;
        var url = input.getAttribute('data-suggest') + '?q=' + encodeURIComponent(q) +
          '&lang=' + encodeURIComponent(input.getAttribute('data-lang') || 'ja') + '&limit=8';
        fetch(url, { headers: { Accept: 'application/json' } })
          .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
          .then(function (data) {
            var items = Array.isArray(data) ? data : (data.suggestions || []);
            list.textContent = '';
            items.forEach(function (item) {
              var option = document.createElement('option');
              option.value = typeof item === 'string' ? item : (item.text || item.value || '');
              list.appendChild(option);
            });
          })
          .catch(function () { /* suggestions are optional */ });
      }, 150);
    });
  });
}());
