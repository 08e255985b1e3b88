/* The compare page: a Mirador 4 workspace with the manifests the visitor chose. */
(function () {
  'use strict';
  var dataEl = document.getElementById('mirador-data');
  if (!dataEl || !window.Mirador) { return; }
  var data = JSON.parse(dataEl.textContent);
  window.archiveMirador = window.Mirador.viewer({
    id: 'mirador',
    language: data.lang,
    windows: data.manifests.map(function (manifest) { return { manifestId: manifest }; }),
    window: { allowClose: true, allowMaximize: true, sideBarOpenByDefault: false },
    workspace: { type: 'mosaic', showZoomControls: true },
    workspaceControlPanel: { enabled: false },
    // Our manifests carry curators' plain text, never markup: show it as text.
    annotations: { htmlSanitizationRuleSet: 'noHtml' },
    catalog: data.manifests.map(function (manifest) { return { manifestId: manifest }; })
  });
}());
