/* The object page's deep-zoom viewer: OpenSeadragon on our IIIF Image API 3.0 tiles,
   our own accessible toolbar and thumbnail strip, and "share this view" as an
   IIIF Content State 1.0 link (an Annotation targeting canvas#xywh, base64url, §6). */
(function () {
  'use strict';
  var dataEl = document.getElementById('viewer-data');
  var el = document.getElementById('osd');
  if (!dataEl || !el || !window.OpenSeadragon) { return; }
  var data = JSON.parse(dataEl.textContent);
  var total = data.tileSources.length;
  var current = data.initial || 0;
  var firstOpen = true;

  var viewer = window.OpenSeadragon({
    element: el,
    tileSources: data.tileSources,
    sequenceMode: total > 1,
    initialPage: current,
    preserveViewport: false,
    showNavigationControl: false,
    showSequenceControl: false,
    showNavigator: false,
    visibilityRatio: 0.5,
    minZoomImageRatio: 0.8,
    maxZoomPixelRatio: 2,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    gestureSettingsTouch: { pinchRotate: false },
    // The 2D canvas drawer: WebGL buys nothing for flat tiles and is slow where it is emulated.
    drawer: 'canvas',
    crossOriginPolicy: false,
    loadTilesWithAjax: false
  });
  window.archiveViewer = viewer;

  // The focusable canvas is what keyboard users drive (arrows, + -, 0, R, F: OpenSeadragon's keys).
  viewer.canvas.setAttribute('role', 'application');
  viewer.canvas.setAttribute('aria-label', el.getAttribute('aria-label') || '');
  viewer.canvas.setAttribute('aria-describedby', 'viewer-help');
  el.removeAttribute('aria-label');
  el.removeAttribute('role');
  el.removeAttribute('tabindex');
  el.removeAttribute('aria-describedby');

  var frame = document.getElementById('viewer-frame');
  var pageLabel = document.getElementById('viewer-page');
  var labelTemplate = el.getAttribute('data-page-label') || '{n} / {total}';
  var shareInput = document.getElementById('share-url');

  function imageRect() {
    var item = viewer.world.getItemAt(0);
    var size = data.sizes[current];
    if (!item || !size) { return null; }
    var r = item.viewportToImageRectangle(viewer.viewport.getBounds(true));
    var x = Math.max(0, Math.round(r.x)), y = Math.max(0, Math.round(r.y));
    var x2 = Math.min(size[0], Math.round(r.x + r.width));
    var y2 = Math.min(size[1], Math.round(r.y + r.height));
    if (x2 <= x || y2 <= y) { return null; }
    return [x, y, x2 - x, y2 - y];
  }

  function encodeState(xywh) {
    var target = data.canvases[current] + (xywh ? '#xywh=' + xywh.join(',') : '');
    var state = {
      '@context': 'http://iiif.io/api/presentation/3/context.json',
      type: 'Annotation',
      motivation: ['contentState'],
      target: { id: target, type: 'Canvas', partOf: [{ id: data.manifest, type: 'Manifest' }] }
    };
    var bytes = new TextEncoder().encode(JSON.stringify(state));
    var bin = '';
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function updateShare() {
    if (!shareInput) { return; }
    shareInput.value = data.url + '?iiif-content=' + encodeState(imageRect());
  }

  function updatePage() {
    if (pageLabel) {
      pageLabel.textContent = labelTemplate.replace('{n}', current + 1).replace('{total}', total);
    }
    var buttons = document.querySelectorAll('.strip button');
    for (var i = 0; i < buttons.length; i++) {
      if (i === current) { buttons[i].setAttribute('aria-current', 'true'); }
      else { buttons[i].removeAttribute('aria-current'); }
    }
  }

  viewer.addHandler('open', function () {
    var fallback = el.querySelector('.viewer-fallback');
    if (fallback) { fallback.remove(); }
    if (firstOpen && data.region) {
      var item = viewer.world.getItemAt(0);
      var r = data.region;
      viewer.viewport.fitBounds(item.imageToViewportRectangle(r[0], r[1], r[2], r[3]), true);
    }
    firstOpen = false;
    updateShare();
  });
  viewer.addHandler('page', function (event) { current = event.page; updatePage(); });
  viewer.addHandler('animation-finish', updateShare);
  viewer.addHandler('rotate', updateShare);

  function go(page) {
    if (page >= 0 && page < total && page !== current) { viewer.goToPage(page); }
  }

  var actions = {
    'zoom-in': function () { viewer.viewport.zoomBy(1.6); viewer.viewport.applyConstraints(); },
    'zoom-out': function () { viewer.viewport.zoomBy(1 / 1.6); viewer.viewport.applyConstraints(); },
    'home': function () { viewer.viewport.goHome(); },
    'rotate': function () { viewer.viewport.setRotation((viewer.viewport.getRotation() + 90) % 360); },
    'prev': function () { go(current - 1); },
    'next': function () { go(current + 1); },
    'fullscreen': function (button) {
      if (document.fullscreenElement) { document.exitFullscreen(); }
      else if (frame.requestFullscreen) { frame.requestFullscreen(); }
    }
  };
  document.querySelectorAll('.viewer-tools [data-action]').forEach(function (button) {
    button.addEventListener('click', function () { actions[button.getAttribute('data-action')](button); });
  });
  document.addEventListener('fullscreenchange', function () {
    var on = document.fullscreenElement === frame;
    var button = frame.querySelector('[data-action="fullscreen"]');
    if (button) { button.setAttribute('aria-pressed', on ? 'true' : 'false'); }
  });
  document.querySelectorAll('.strip button').forEach(function (button) {
    button.addEventListener('click', function () {
      go(parseInt(button.getAttribute('data-index'), 10));
      viewer.canvas.focus();
    });
  });

  var copy = document.getElementById('share-copy');
  var status = document.getElementById('share-status');
  if (copy && shareInput) {
    copy.addEventListener('click', function () {
      updateShare();
      var done = function () { if (status) { status.textContent = data.labels.share_copied; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(shareInput.value).then(done, function () { shareInput.select(); });
      } else {
        shareInput.select();
        try { document.execCommand('copy'); done(); } catch (e) { /* selected for manual copy */ }
      }
    });
  }
}());
