/* The officers' neighbourhood drawing page: a Leaflet map with the district borders and leaflet-draw's polygon
   tool. The drawn outline (GeoJSON, EPSG:4326) goes into the form's hidden "geometry" field; the server checks it
   (at least three distinct points, a valid polygon) and says what is wrong. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("draw-config").textContent);
  var field = document.getElementById("draw-geometry");
  var status = document.getElementById("draw-status");
  var map = L.map("draw-map", {maxZoom: 19});
  if (cfg.tiles && cfg.tiles.toLowerCase() !== "none") {
    L.tileLayer(cfg.tiles, {attribution: cfg.tiles_attribution, maxZoom: 19}).addTo(map);
  }
  L.geoJSON(cfg.districts, {style: {color: "#505a5f", weight: 1.5, fill: false, dashArray: "4 3"},
    onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.name); }}).addTo(map);
  map.fitBounds(cfg.bounds);
  var drawn = new L.FeatureGroup().addTo(map);
  if (field.value) {
    try { drawn.addLayer(L.geoJSON(JSON.parse(field.value)).getLayers()[0]); } catch (e) { field.value = ""; }
  }
  map.addControl(new L.Control.Draw({
    draw: {polygon: {allowIntersection: false, showArea: true, shapeOptions: {color: "#d4351c"}},
           polyline: false, rectangle: {shapeOptions: {color: "#d4351c"}}, circle: false, marker: false,
           circlemarker: false},
    edit: {featureGroup: drawn}
  }));
  function save() {
    var layers = drawn.getLayers();
    if (!layers.length) { field.value = ""; status.textContent = "No outline drawn yet."; return; }
    var geometry = layers[layers.length - 1].toGeoJSON().geometry;
    field.value = JSON.stringify(geometry);
    status.textContent = "Outline drawn with " + (geometry.coordinates[0].length - 1) + " points. Name it and save.";
  }
  map.on(L.Draw.Event.CREATED, function (e) { drawn.clearLayers(); drawn.addLayer(e.layer); save(); });
  map.on(L.Draw.Event.EDITED, save);
  map.on(L.Draw.Event.DELETED, save);
  window.assetMapDraw = {map: map, drawn: drawn};
})();
