/* Loaded in the page's head, before the map is built: sets the opening view (a shared link's #map=zoom/lat/lon, or a
   searched postcode) and starts fetching that view's assets at once, while the browser is still drawing the
   boundaries and need layers. explorer.js then picks the response up. */
(function () {
  "use strict";

  function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }

  function config() {
    var node = document.getElementById("explorer-config");
    return node ? JSON.parse(node.textContent) : null;
  }

  function query(map, cfg, extra) {
    var params = new URLSearchParams();
    Object.keys(cfg.filter).forEach(function (k) { if (k !== "bbox") { params.set(k, cfg.filter[k]); } });
    var b = map.getBounds().pad(0.25);
    params.set("bbox", [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180),
                        clamp(b.getNorth(), -90, 90)].map(function (v) { return v.toFixed(5); }).join(","));
    params.set("zoom", String(map.getZoom()));
    Object.keys(extra || {}).forEach(function (k) { params.set(k, extra[k]); });
    return params.toString();
  }

  function assetsUrl(map, cfg) { return cfg.urls.assets + "?" + query(map, cfg); }

  function start(map) {
    var cfg = config();
    if (!cfg || !cfg.urls.assets) { return; }
    var m = /^#map=(\d+)\/(-?[\d.]+)\/(-?[\d.]+)/.exec(location.hash);
    if (m) {
      map.setView([parseFloat(m[2]), parseFloat(m[3])], parseInt(m[1], 10), {animate: false});
    } else if (cfg.focus) {
      map.setView([cfg.focus.lat, cfg.focus.lon], cfg.focus.zoom || 15, {animate: false});
    } else if (cfg.outline) {
      map.fitBounds(cfg.outline.bounds, {animate: false});
    }
    // At England scale the assets come as vector tiles (explorer-tiles.js): nothing to prefetch from the API.
    if (cfg.asset_tiles) { return; }
    var url = assetsUrl(map, cfg);
    window.assetMapView.prefetched = {url: url,
                                      response: fetch(url, {headers: {Accept: "application/geo+json"}})};
  }

  // The prefetched response for ``url`` if there is one (once), else null.
  function take(url) {
    var p = window.assetMapView.prefetched;
    window.assetMapView.prefetched = null;
    return p && p.url === url ? p.response : null;
  }

  window.assetMapView = {start: start, query: query, assetsUrl: assetsUrl, take: take, prefetched: null};
}());
