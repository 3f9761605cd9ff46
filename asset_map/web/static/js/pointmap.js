/* A small Leaflet map for the community pages: the suggest form (click to mark a place; the point goes into the
   form's hidden lat/lon fields) and the moderation pages (the suggestion and the assets near it, read only).
   Configuration comes from the JSON block #point-map-config; text is set with textContent, never innerHTML. */
(function () {
  "use strict";
  var box = document.getElementById("point-map");
  var cfgNode = document.getElementById("point-map-config");
  if (!box || !cfgNode || typeof L === "undefined") { return; }
  var cfg = JSON.parse(cfgNode.textContent);
  var map = L.map(box, {scrollWheelZoom: false});
  if (cfg.tiles) { L.tileLayer(cfg.tiles, {attribution: cfg.attribution, maxZoom: 19}).addTo(map); }
  if (cfg.districts_url) {
    fetch(cfg.districts_url).then(function (r) { return r.ok ? r.json() : null; }).then(function (fc) {
      if (fc) { L.geoJSON(fc, {style: {color: "#1d70b8", weight: 2, fillOpacity: 0.06}, interactive: false}).addTo(map); }
    });
  }
  // Assets already on the map around the view (the public API), so people can see what is there already.
  if (cfg.assets_url) {
    var known = L.layerGroup().addTo(map);
    var showKnown = function () {
      var b = map.getBounds();
      var url = cfg.assets_url + "?zoom=" + map.getZoom() + "&bbox=" + [b.getWest(), b.getSouth(), b.getEast(),
        b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",");
      fetch(url).then(function (r) { return r.ok ? r.json() : null; }).then(function (fc) {
        known.clearLayers();
        (fc ? fc.features : []).forEach(function (f) {
          var c = f.geometry.coordinates;
          var dot = L.circleMarker([c[1], c[0]], {radius: 5, color: "#505a5f", weight: 1, fillOpacity: 0.6});
          var label = document.createElement("span");
          label.textContent = f.properties.count > 1 ? f.properties.count + " assets" : (f.properties.name || "");
          dot.bindTooltip(label);
          known.addLayer(dot);
        });
      });
    };
    map.on("moveend", showKnown);
  }
  var marker = null;
  var lat = document.getElementById("lat"), lon = document.getElementById("lon");
  var status = document.getElementById("point-status");
  function place(latlng) {
    if (marker) { marker.setLatLng(latlng); } else {
      marker = L.circleMarker(latlng, {radius: 9, color: "#d4351c", weight: 3, fillOpacity: 0.6}).addTo(map);
    }
  }
  if (cfg.point) { place(cfg.point); map.setView(cfg.point, cfg.zoom || 15); }
  else if (cfg.bounds) { map.fitBounds(cfg.bounds); } else { map.setView([52.8, -2.0], 9); }
  (cfg.markers || []).forEach(function (m) {
    var dot = L.circleMarker([m.lat, m.lon], {radius: 6, color: m.duplicate ? "#f47738" : "#505a5f", weight: 2,
                                              fillOpacity: 0.5}).addTo(map);
    var label = document.createElement("span");
    label.textContent = m.label;
    dot.bindTooltip(label);
  });
  if (cfg.markers && cfg.markers.length && cfg.point) {
    var all = cfg.markers.map(function (m) { return [m.lat, m.lon]; }).concat([cfg.point]);
    map.fitBounds(all, {padding: [20, 20], maxZoom: 17});
  }
  if (lat && lon) {
    map.on("click", function (e) {
      place(e.latlng);
      lat.value = e.latlng.lat.toFixed(6);
      lon.value = e.latlng.lng.toFixed(6);
      if (status) { status.textContent = "Marked on the map at " + lat.value + ", " + lon.value + "."; }
    });
  }
  box.setAttribute("data-ready", "1");
})();
