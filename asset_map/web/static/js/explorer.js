/* The map explorer: fetches the assets of the visible area from the API on every move, clusters them, and puts
   one switchable layer per tier and category in a grouped layer control.

   Text from the data never goes through innerHTML: popups, titles and counts are DOM nodes filled with textContent,
   so an asset called "<img src=x onerror=alert(1)>" shows as exactly that text. The page's config (JSON in
   #explorer-config) holds only our own data: category colours and icons (checked against patterns at start-up),
   URLs and the filter. */
(function () {
  "use strict";

  performance.mark("explorer-start");
  var cfg = JSON.parse(document.getElementById("explorer-config").textContent);
  var map = window[cfg.map];
  var status = document.getElementById("map-status");
  var styles = {};
  var categoryLayers = {};
  var markersByCategory = {};
  var pending = null;
  var timer = null;
  var DEFAULT_STYLE = {label: "Other", color: "#505a5f", icon: "location-dot"};

  cfg.categories.forEach(function (c) { styles[c.category] = c; });

  function styleOf(category) {
    return styles[category] || DEFAULT_STYLE;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function badge(style, extraClass) {
    var pin = el("span", "asset-pin" + (extraClass ? " " + extraClass : ""));
    pin.style.backgroundColor = style.color;
    pin.style.borderColor = style.color;
    var icon = el("i", "fa fa-" + style.icon);
    icon.setAttribute("aria-hidden", "true");
    pin.appendChild(icon);
    return pin;
  }

  // ---- clustering: counts of server-side aggregates add up inside client-side clusters
  var cluster = L.markerClusterGroup({
    chunkedLoading: true,
    showCoverageOnHover: false,
    maxClusterRadius: 60,
    iconCreateFunction: function (group) {
      var n = 0;
      group.getAllChildMarkers().forEach(function (m) { n += m.options.count || 1; });
      return countIcon(n, "marker-cluster");
    }
  });
  map.addLayer(cluster);

  function countIcon(n, className) {
    var size = n < 10 ? "small" : (n < 100 ? "medium" : "large");
    var outer = el("div");
    var inner = el("span", null, n.toLocaleString("en-GB"));
    outer.appendChild(inner);
    outer.setAttribute("role", "img");
    outer.setAttribute("aria-label", n + (n === 1 ? " asset" : " assets") + ", zoom in to see them");
    return L.divIcon({html: outer, className: className + " marker-cluster-" + size, iconSize: L.point(40, 40)});
  }

  // ---- popups, built as DOM
  function row(dl, label, value) {
    if (value === undefined || value === null || value === "") { return; }
    dl.appendChild(el("dt", null, label));
    var dd = el("dd");
    if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = String(value); }
    dl.appendChild(dd);
  }

  function popup(p, id) {
    var box = el("div", "asset-popup");
    box.appendChild(el("h2", "asset-popup-title", p.name));
    if (id !== undefined && id !== null) {
      // The asset's own page: details, history, nearby assets (and, for those who may, edit and verify).
      var more = el("a", "asset-popup-link", "Details and history");
      more.href = "/assets/" + encodeURIComponent(id);
      box.appendChild(more);
    }
    var dl = el("dl");
    row(dl, "Tier", cfg.tiers[p.tier] || p.tier);
    row(dl, "Category", styleOf(p.category).label);
    row(dl, "Offers", (p.offers || []).join(", "));
    row(dl, "Address", [p.address, p.postcode].filter(Boolean).join(", "));
    if (p.url && /^https?:\/\//i.test(p.url)) {
      var a = el("a", null, p.url);
      a.href = p.url;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      row(dl, "Website", a);
    } else {
      row(dl, "Website", p.url);
    }
    row(dl, "Email", p.email);
    row(dl, "Phone", p.phone);
    row(dl, "Status", p.status);
    var verified = p.last_verified || "never";
    if (p.stale) { verified += " (stale: not verified for over " + cfg.stale_months + " months)"; }
    row(dl, "Last verified", verified);
    box.appendChild(dl);
    if (cfg.urls.suggest && id && p.tier !== "individual") {
      var change = el("a", "asset-popup-suggest", "Suggest a change");
      change.href = cfg.urls.suggest + "?asset=" + encodeURIComponent(id);
      box.appendChild(change);
    }
    return box;
  }

  function assetMarker(f) {
    var p = f.properties;
    var c = f.geometry.coordinates;  // GeoJSON order: [lon, lat]; Leaflet wants [lat, lon]
    var style = styleOf(p.category);
    if (p.count && p.count > 1) {
      var agg = L.marker([c[1], c[0]], {icon: countIcon(p.count, "marker-cluster asset-aggregate"),
                                        count: p.count, category: p.category, title: p.count + " x " + style.label, keyboard: true});
      agg.on("click", function () { map.setView(agg.getLatLng(), Math.min(map.getZoom() + 2, 18)); });
      return agg;
    }
    var icon = L.divIcon({html: badge(style, p.stale ? "asset-stale" : ""), className: "asset-marker",
                          iconSize: [28, 28], iconAnchor: [14, 14], popupAnchor: [0, -14]});
    var marker = L.marker([c[1], c[0]], {icon: icon, title: p.name + (p.stale ? " (stale)" : ""),
                                         keyboard: true, count: 1, category: p.category, assetId: f.id});
    marker.bindPopup(function () { return popup(p, f.id); }, {maxWidth: 320});
    return marker;
  }

  // ---- at England scale the assets are vector tiles (explorer-tiles.js), not markers fetched from the API
  var assetTiles = null;
  var redrawTimer = null;
  function redrawTiles() {
    clearTimeout(redrawTimer);
    redrawTimer = setTimeout(function () { if (assetTiles) { assetTiles.redraw(); } }, 0);
  }

  // ---- layers: one (empty) layer per category in the control; its add/remove events show or hide its markers
  function categoryLayer(category) {
    if (!categoryLayers[category]) {
      var layer = L.layerGroup();
      layer.on("add", function () {
        if (assetTiles) { redrawTiles(); } else { cluster.addLayers(markersByCategory[category] || []); }
      });
      layer.on("remove", function () {
        if (assetTiles) { redrawTiles(); } else { cluster.removeLayers(markersByCategory[category] || []); }
      });
      categoryLayers[category] = layer;
    }
    return categoryLayers[category];
  }

  function controlLabel(style, text, extraClass) {
    var span = el("span", "asset-layer-label");
    span.appendChild(badge(style, extraClass));
    span.appendChild(el("span", null, " " + text));
    return span.outerHTML;  // built from text nodes, so any markup in the data arrives as entities
  }

  var groups = {};
  var contextGroup = "Boundaries and need";
  groups[contextGroup] = {};
  cfg.overlays.forEach(function (o) {
    var layer = window[o.var];
    if (layer) { groups[contextGroup][el("span", null, o.title).outerHTML] = layer; }
  });
  // At England scale the need and boundary layers come as vector tiles (explorer-tiles.js), not in the page.
  var tileLayers = window.assetMapTiles ? window.assetMapTiles.add(map, cfg, {el: el, row: row}) : [];
  tileLayers.forEach(function (t) { groups[contextGroup][el("span", null, t.title).outerHTML] = t.layer; });
  // Categories switched off in a shared link (#...&off=school,park) start switched off.
  var off = /[#&]off=([^&]*)/.exec(location.hash);
  var hidden = off ? decodeURIComponent(off[1]).split(",") : [];
  cfg.categories.forEach(function (c) {
    var group = cfg.tiers[c.tier] || c.tier;
    groups[group] = groups[group] || {};
    groups[group][controlLabel(c, c.label)] = categoryLayer(c.category);
    if (hidden.indexOf(c.category) === -1) { categoryLayer(c.category).addTo(map); }
  });

  var individualsLayer = null;
  if (cfg.individuals === "counts" && cfg.urls.individuals) {
    individualsLayer = L.layerGroup();
    var group = cfg.tiers.individual + " (counts per area)";
    groups[group] = {};
    groups[group][controlLabel({color: "#ffffff", icon: "users"}, "Individuals per area (rounded to 5; fewer than " +
      cfg.suppress_below + " not shown)", "asset-count-badge")] = individualsLayer;
    individualsLayer.on("add", loadIndividuals);
  }

  var control = L.control.groupedLayers({}, groups, {collapsed: false, groupCheckboxes: true, position: "topright"});
  control.addTo(map);
  var container = control.getContainer();
  container.setAttribute("role", "region");
  container.setAttribute("aria-label", "Map layers");
  container.classList.add("asset-layer-control");

  // The plugin leaves each group's "all" checkbox unticked whatever its layers show: keep it in step (ticked when all
  // of the group is on, mixed when some are).
  function syncGroups() {
    var inputs = Array.prototype.slice.call(container.querySelectorAll("input.leaflet-control-layers-selector"));
    container.querySelectorAll("input.leaflet-control-layers-group-selector").forEach(function (sel) {
      var mine = inputs.filter(function (i) { return i.groupID === sel.groupID; });
      var on = mine.filter(function (i) { return i.checked; }).length;
      sel.checked = mine.length > 0 && on === mine.length;
      sel.indeterminate = on > 0 && on < mine.length;
    });
  }
  var update = control._update;
  control._update = function () { update.apply(this, arguments); syncGroups(); };
  L.DomEvent.on(container, "click", function () { setTimeout(syncGroups, 0); });
  syncGroups();

  // ---- fetching the visible area
  function say(text) { if (status) { status.textContent = text; } }

  function draw(fc) {
    cluster.clearLayers();
    markersByCategory = {};
    var visible = [];
    fc.features.forEach(function (f) {
      var m = assetMarker(f);
      var category = f.properties.category;
      (markersByCategory[category] = markersByCategory[category] || []).push(m);
      var layer = categoryLayers[category];
      if (!layer || map.hasLayer(layer)) { visible.push(m); }
    });
    cluster.addLayers(visible);
    var n = fc.total;
    say(n === 0 ? "No assets match these filters in this part of the map." :
        n.toLocaleString("en-GB") + (n === 1 ? " asset" : " assets") + " in this part of the map" +
        (fc.mode === "clusters" ? " (grouped: zoom in for details)." : "."));
    document.body.setAttribute("data-assets-mode", fc.mode);
    document.body.setAttribute("data-assets-total", String(n));
    if (window.assetMapDrawnAt === undefined) { window.assetMapDrawnAt = performance.now(); }
    document.body.setAttribute("data-assets-loaded", "1");
  }

  function refresh() {
    if (pending) { pending.abort(); }
    pending = new AbortController();
    var url = window.assetMapView.assetsUrl(map, cfg);
    var request = window.assetMapView.take(url) ||
      fetch(url, {signal: pending.signal, headers: {Accept: "application/geo+json"}});
    request
      .then(function (r) {
        performance.mark("assets-response");
        if (!r.ok) {
          return r.json().then(function (e) { throw new Error(e.description || r.statusText); });
        }
        return r.json();
      })
      .then(draw)
      .catch(function (err) {
        if (err.name !== "AbortError") { say("Assets could not be loaded: " + err.message); }
      });
  }

  function loadIndividuals() {
    if (individualsLayer.getLayers().length) { return; }
    var params = new URLSearchParams();
    Object.keys(cfg.filter).forEach(function (k) { if (k !== "bbox") { params.set(k, cfg.filter[k]); } });
    fetch(cfg.urls.individuals + "?" + params.toString()).then(function (r) { return r.json(); }).then(function (fc) {
      fc.features.forEach(function (f) {
        var p = f.properties;
        // Every area comes back, suppressed ones ("fewer than 5", none included) as null: only shown counts are
        // drawn, so the map is not covered in badges and nobody and a few look the same (asset_map.disclosure).
        if (p.count === null) { return; }
        var c = f.geometry.coordinates;
        var box = el("span", "asset-count", p.count);
        var title = "Individuals in " + (p.area_name || p.area_code) + ": " + p.label;
        box.setAttribute("aria-label", title);
        L.marker([c[1], c[0]], {icon: L.divIcon({html: box, className: "asset-count-marker", iconSize: [30, 22]}),
                                title: title, keyboard: true}).addTo(individualsLayer);
      });
    });
  }

  // The address bar keeps the view and the switched-off categories, so copying it shares exactly this map.
  function remember() {
    var c = map.getCenter();
    var hash = "#map=" + map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5);
    var offNow = Object.keys(categoryLayers).filter(function (k) { return !map.hasLayer(categoryLayers[k]); });
    if (offNow.length) { hash += "&off=" + encodeURIComponent(offNow.join(",")); }
    history.replaceState(null, "", location.pathname + location.search + hash);
    suggestHere();
  }

  // "Suggest an asset here" opens the suggest form on the middle of this view.
  function suggestHere() {
    var suggest = document.getElementById("suggest-here");
    if (suggest && cfg.urls.suggest) {
      var c = map.getCenter();
      suggest.href = cfg.urls.suggest + "?lat=" + c.lat.toFixed(6) + "&lon=" + c.lng.toFixed(6) + "&zoom=" + map.getZoom();
    }
  }
  suggestHere();

  if (cfg.asset_tiles && window.assetMapTiles && window.assetMapTiles.addAssets) {
    assetTiles = window.assetMapTiles.addAssets(map, cfg, {
      styleOf: styleOf,
      shown: function (category) { var l = categoryLayers[category]; return !l || map.hasLayer(l); },
      popup: popup,
      onLoad: function () {
        say("Assets drawn from map tiles: a circle with a white ring is a group, select it to zoom in.");
        document.body.setAttribute("data-assets-mode", "tiles");
        if (window.assetMapDrawnAt === undefined) { window.assetMapDrawnAt = performance.now(); }
        document.body.setAttribute("data-assets-loaded", "1");
      }
    });
  }

  map.on("overlayadd overlayremove", function () { setTimeout(remember, 0); });
  map.on("moveend", function () {
    remember();
    if (assetTiles) { return; }
    clearTimeout(timer);
    timer = setTimeout(refresh, 120);
  });

  // ---- legend for the asset markers (our own fixed wording)
  var legend = L.control({position: "bottomleft"});
  legend.onAdd = function () {
    var div = el("div", "asset-map-legend asset-marker-legend");
    div.setAttribute("role", "region");
    div.setAttribute("aria-label", "Asset marker legend");
    div.appendChild(el("strong", null, "Assets"));
    var sample = {color: "#1d70b8", icon: "book"};
    [[badge(sample), "verified in the last " + cfg.stale_months + " months"],
     [badge(sample, "asset-stale"), "stale: not verified for over " + cfg.stale_months + " months"],
     [el("span", "asset-legend-cluster", "12"), "a group of assets: select to zoom in"]]
      .forEach(function (item) {
        var line = el("div", "asset-legend-row");
        line.appendChild(item[0]);
        line.appendChild(el("span", null, " " + item[1]));
        div.appendChild(line);
      });
    if (cfg.individuals === "counts") {
      div.appendChild(el("div", "asset-legend-note", "Individuals are shown only as counts per area."));
    }
    return div;
  };
  legend.addTo(map);

  // ---- the area of a geography the view is filtered to (?area=divisions:D001), outlined
  if (cfg.outline) {
    L.geoJSON(cfg.outline.geojson, {interactive: false, style: {color: "#0b0c0c", weight: 3, fill: false}})
      .addTo(map);
  }

  // ---- the searched postcode and the numbered nearest assets (explorer-view.js has set the opening view)
  if (cfg.focus) {
    L.circleMarker([cfg.focus.lat, cfg.focus.lon], {radius: 9, color: "#0b0c0c", weight: 3, fillColor: "#ffdd00",
                                                  fillOpacity: 1})
      .bindTooltip(el("span", null, cfg.focus.label), {permanent: true, direction: "right"}).addTo(map);
  }
  (cfg.nearest || []).forEach(function (n) {
    var label = el("span", "asset-nearest", n.n);
    L.marker([n.lat, n.lon], {icon: L.divIcon({html: label, className: "asset-nearest-marker", iconSize: [24, 24]}),
                              title: n.n + ". " + n.name, keyboard: true, zIndexOffset: 1000})
      .bindTooltip(el("span", null, n.n + ". " + n.name)).addTo(map);
  });
  // ---- postcode search in place: when only the postcode changed, ask the gazetteer and move the map instead of
  // reloading the page (without JavaScript the form still submits and the server centres the map).
  var form = document.querySelector("form.explorer-form");
  var postcodeMarker = null;
  if (form && cfg.urls.postcode) {
    var initial = new URLSearchParams(new FormData(form));
    form.addEventListener("submit", function (event) {
      var now = new URLSearchParams(new FormData(form));
      var others = function (p) { p = new URLSearchParams(p); p.delete("postcode"); return p.toString(); };
      var wanted = (now.get("postcode") || "").trim();
      if (!wanted || others(now) !== others(initial)) { return; }
      event.preventDefault();
      var input = document.getElementById("postcode");
      fetch(cfg.urls.postcode + "?" + new URLSearchParams({postcode: wanted}).toString())
        .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
        .then(function (res) {
          if (!res.ok) {
            input.setAttribute("aria-invalid", "true");
            say(res.body.description || "That postcode could not be found.");
            return;
          }
          input.removeAttribute("aria-invalid");
          var pc = res.body;
          if (postcodeMarker) { map.removeLayer(postcodeMarker); }
          postcodeMarker = L.circleMarker([pc.lat, pc.lon], {radius: 9, color: "#0b0c0c", weight: 3,
                                                             fillColor: "#ffdd00", fillOpacity: 1})
            .bindTooltip(el("span", null, pc.postcode), {permanent: true, direction: "right"}).addTo(map);
          var params = new URLSearchParams(location.search);
          params.set("postcode", pc.postcode);
          history.replaceState(null, "", location.pathname + "?" + params.toString() + location.hash);
          initial = new URLSearchParams(new FormData(form));
          map.setView([pc.lat, pc.lon], 15);
        });
    });
  }

  // Controls and legends sit beside the map when the page gives them a place (#map-key), so they never cover the
  // map or its popups; Leaflet controls keep working when their container moves.
  var key = document.getElementById("map-key");
  if (key) {
    key.appendChild(container);
    // The need legend first, then the asset markers' key.
    var legends = Array.prototype.slice.call(map.getContainer().querySelectorAll(".asset-map-legend"));
    legends.sort(function (a, b) {
      return a.classList.contains("asset-marker-legend") - b.classList.contains("asset-marker-legend");
    });
    legends.forEach(function (node) { key.appendChild(node); });
  }
  if (!assetTiles) { refresh(); }
  window.assetMap = {map: map, cluster: cluster, layers: categoryLayers, refresh: refresh, tiles: tileLayers,
                     assetTiles: assetTiles};
}());
