// A small map for one asset's page or form: the asset's point and its neighbours; in a form ("pick"), a click
// places the point and fills the lon/lat fields. Reads its settings from #point-map-config (JSON).
(function () {
  "use strict";
  var holder = document.getElementById("point-map");
  var source = document.getElementById("point-map-config");
  if (!holder || !source || typeof L === "undefined") { return; }
  var config = JSON.parse(source.textContent);
  var start = config.point ? [config.point[1], config.point[0]] : [52.83, -2.0];   // [lat, lon] for Leaflet
  var map = L.map(holder, {maxZoom: 19}).setView(start, config.point ? 15 : 9);
  if (config.tiles) {
    L.tileLayer(config.tiles, {maxZoom: 19, attribution: config.attribution || ""}).addTo(map);
  }
  L.control.scale({imperial: false}).addTo(map);
  var marker = null;
  function place(lat, lon) {
    if (marker) { marker.setLatLng([lat, lon]); } else {
      marker = L.circleMarker([lat, lon], {radius: 9, color: "#1d70b8", weight: 3, fillOpacity: 0.6}).addTo(map);
    }
    if (config.name) { marker.bindTooltip(config.name); }
  }
  if (config.point) { place(start[0], start[1]); }
  (config.nearby || []).forEach(function (n) {
    var m = L.circleMarker([n.lat, n.lon], {radius: 6, color: "#505a5f", weight: 2, fillOpacity: 0.4}).addTo(map);
    m.bindTooltip(n.name);
    m.on("click", function () { window.location.href = n.url; });
  });
  // A preview's placed rows: [lon, lat, name] each, the map fitted to them.
  if (config.points && config.points.length) {
    var bounds = [];
    config.points.forEach(function (p) {
      L.circleMarker([p[1], p[0]], {radius: 4, color: "#00703c", weight: 1, fillOpacity: 0.7})
        .bindTooltip(String(p[2])).addTo(map);
      bounds.push([p[1], p[0]]);
    });
    map.fitBounds(bounds, {padding: [20, 20], maxZoom: 15});
  }
  // District outlines (the OGC API's districts collection) where a point is placed or rows previewed: the map has
  // something to place a point against even without base-map tiles (offline).
  if ((config.pick || config.points) && config.districts && window.fetch) {
    fetch(config.districts, {headers: {"Accept": "application/geo+json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        L.geoJSON(data, {interactive: false, style: {color: "#505a5f", weight: 1.5, fill: false}}).addTo(map);
        holder.setAttribute("data-districts", "1");
      })
      .catch(function () { /* the outlines are a help, not a need */ });
  }
  if (config.pick) {
    holder.classList.add("point-map--pick");
    map.on("click", function (e) {
      var lon = document.getElementById("lon"), lat = document.getElementById("lat");
      place(e.latlng.lat, e.latlng.lng);
      if (lon && lat) { lon.value = e.latlng.lng.toFixed(6); lat.value = e.latlng.lat.toFixed(6); }
    });
  }
  window.pointMap = map;  // for tests and the browser console
  holder.setAttribute("data-ready", "1");
})();
