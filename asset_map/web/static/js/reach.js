/* Who can reach an asset: draws its isochrones (GeoJSON from /api/assets/<id>/isochrones.geojson).

   - On an asset's page: every .asset-reach-map element gets a small map with the 5/10/15-minute polygons and the
     table below it is filled in (the partial templates/assets/_isochrones.html).
   - On the main map (window.assetMap from explorer.js): an asset's popup gets a "Who can reach this?" button that
     draws the same polygons as a "Who can reach this" layer, with its own key and a button to clear it.
   Text from the data goes into the page through textContent only. Leaflet is loaded first when the page lacks it. */
(function () {
  "use strict";
  var COLORS = {5: "#00703c", 10: "#ffdd00", 15: "#d4351c"};
  var current = document.currentScript;

  function colorOf(minutes) { return COLORS[minutes] || "#1d70b8"; }

  function style(f) {
    var c = colorOf(f.properties.minutes);
    return {color: c, weight: 1.5, fillColor: c, fillOpacity: 0.25};
  }

  function fetchIsochrones(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/geo+json"}}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.message || body.error || ("HTTP " + r.status)); }
        return body;
      });
    });
  }

  function layerOf(doc) {
    return L.geoJSON(doc, {style: style, onEachFeature: function (f, layer) {
      layer.bindTooltip(f.properties.minutes + " min walk (" + Math.round(f.properties.metres) + " m)");
    }});
  }

  function fillTable(table, doc) {
    if (!table) { return; }
    var body = table.querySelector("tbody");
    body.textContent = "";
    doc.features.slice().reverse().forEach(function (f) {
      var tr = document.createElement("tr");
      tr.className = "govuk-table__row";
      [f.properties.minutes + " minutes", Math.round(f.properties.metres).toLocaleString("en-GB") + " m",
       f.properties.area_km2.toLocaleString("en-GB") + " km²"].forEach(function (text, i) {
        var td = document.createElement("td");
        td.className = "govuk-table__cell" + (i ? " govuk-table__cell--numeric" : "");
        td.textContent = text;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function initPanel(el) {
    var section = el.closest(".asset-reach");
    var status = section && section.querySelector(".asset-reach-status");
    var map = L.map(el, {maxZoom: 19});
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, {maxZoom: 19, attribution: el.dataset.tilesAttribution || ""}).addTo(map);
    }
    map.setView([52.8, -2.0], 9);
    fetchIsochrones(el.dataset.isochronesUrl).then(function (doc) {
      var layer = layerOf(doc).addTo(map);
      map.fitBounds(layer.getBounds(), {padding: [10, 10]});
      fillTable(section && section.querySelector(".asset-reach-table"), doc);
      if (status) {
        status.textContent = "Network: " + doc.asset_map.network.source + ". The asset is " +
          Math.round(doc.asset_map.snap_m) + " m from the nearest street.";
      }
      el.dataset.drawn = "1";
    }).catch(function (err) {
      if (status) { status.textContent = "No isochrone: " + err.message; }
      el.dataset.drawn = "error";
    });
  }

  function initMainMap(am) {
    var map = am.map;
    var layer = null;
    var key = L.control({position: "bottomleft"});
    key.onAdd = function () {
      var div = L.DomUtil.create("div", "asset-map-legend reach-key");
      div.setAttribute("role", "region");
      div.setAttribute("aria-label", "Who can reach this");
      return div;
    };

    function clear() {
      if (layer) { map.removeLayer(layer); layer = null; }
      if (key._map) { key.remove(); }
    }

    function draw(id, name) {
      var url = "/api/assets/" + encodeURIComponent(id) + "/isochrones.geojson?minutes=5,10,15&mode=walk";
      return fetchIsochrones(url).then(function (doc) {
        clear();
        layer = layerOf(doc);
        layer.addTo(map);
        layer.bringToBack();
        key.addTo(map);
        var div = key.getContainer();
        div.textContent = "";
        var title = document.createElement("strong");
        title.textContent = "Who can reach " + name;
        div.appendChild(title);
        [5, 10, 15].forEach(function (m) {
          var row = document.createElement("div");
          var sw = document.createElement("i");
          sw.style.background = colorOf(m);
          row.appendChild(sw);
          row.appendChild(document.createTextNode(m + " min walk"));
          div.appendChild(row);
        });
        var btn = document.createElement("button");
        btn.type = "button";
        btn.className = "reach-clear";
        btn.textContent = "Clear";
        btn.addEventListener("click", clear);
        div.appendChild(btn);
        map.fitBounds(layer.getBounds(), {padding: [20, 20]});
      });
    }

    map.on("popupopen", function (e) {
      var source = e.popup._source;
      var id = source && source.options && source.options.assetId;
      var box = e.popup.getElement() && e.popup.getElement().querySelector(".asset-popup");
      if (!id || !box || box.querySelector(".reach-button")) { return; }
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "reach-button";
      btn.textContent = "Who can reach this? (walk)";
      var note = document.createElement("p");
      note.className = "reach-note";
      btn.addEventListener("click", function () {
        note.textContent = "Drawing…";
        var title = box.querySelector(".asset-popup-title");
        draw(id, title ? title.textContent : "this").then(function () { note.textContent = ""; })
          .catch(function (err) { note.textContent = err.message; });
      });
      box.appendChild(btn);
      box.appendChild(note);
    });
    am.reach = {draw: draw, clear: clear};
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll(".asset-reach-map"), initPanel);
    if (window.assetMap && window.assetMap.map) { initMainMap(window.assetMap); }
  }

  // Leaflet may come later in the page (an asset page loads it at the end): decide once the page is parsed.
  function withLeaflet() {
    if (window.L) { start(); return; }
    var s = document.createElement("script");
    s.src = current && current.dataset.leaflet;
    s.onload = start;
    document.head.appendChild(s);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", withLeaflet); } else { withLeaflet(); }
})();
