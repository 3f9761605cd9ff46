/* The need choropleth and the district boundaries drawn from our vector tiles (/tiles/<layer>/{z}/{x}/{y}.mvt) with
   Leaflet.VectorGrid, for maps too big to carry their polygons in the page (England: 33,755 areas). explorer.js
   calls add() and puts the layers in its layer control.

   Popups are DOM nodes filled with textContent, as for the assets. Tiles are drawn on canvas (fast with tens of
   thousands of polygons); a click finds the feature under the pointer. Below DETAIL_ZOOM a need tile carries only
   the decile, so its popup says to zoom in for the area's name and score. */
(function () {
  "use strict";

  var DETAIL_ZOOM = 10;

  // VectorGrid 1.3.0 calls L.DomEvent.fakeStop, which Leaflet 1.8 removed; stopping propagation is what it meant.
  if (!L.DomEvent.fakeStop) { L.DomEvent.fakeStop = L.DomEvent.stopPropagation; }

  function tileUrl(cfg, spec) {
    var params = new URLSearchParams(spec.query);
    return cfg.urls.tiles.replace("__layer__", encodeURIComponent(spec.id)) + "?" + params.toString();
  }

  function colour(spec, value) {
    if (value === undefined || value === null || value === "") { return spec.no_data; }
    var i = Math.min(Math.max(parseInt(value, 10) - 1, 0), spec.colors.length - 1);
    return spec.colors[i];
  }

  function styleFor(spec) {
    var s = spec.style || {};
    if (spec.kind === "choropleth") {
      return function (p, zoom) {
        return {fill: true, fillColor: colour(spec, p[spec.value]), fillOpacity: s.fill_opacity || 0.65,
                stroke: zoom >= 9, color: s.color || "#636363", weight: s.weight || 0.5};
      };
    }
    return function () {
      return {fill: false, stroke: true, color: s.color || "#000000", weight: s.weight || 2};
    };
  }

  function popup(spec, p, zoom, dom) {
    var box = dom.el("div", "asset-popup");
    var dl = dom.el("dl");
    var shown = 0;
    (spec.popup || []).forEach(function (field) {
      if (p[field] !== undefined && p[field] !== null) {
        dom.row(dl, (spec.labels || {})[field] || field, p[field]);
        shown += 1;
      }
    });
    box.appendChild(dl);
    if (spec.kind === "choropleth" && zoom < DETAIL_ZOOM) {
      box.appendChild(dom.el("p", "asset-popup-note", "Zoom in for the area's name, score and rank."));
    }
    return shown || spec.kind === "choropleth" ? box : null;
  }

  function add(map, cfg, dom) {
    if (!cfg.tile_layers || !cfg.tile_layers.length || !L.vectorGrid) { return []; }
    var made = [];
    var loading = 0;
    cfg.tile_layers.forEach(function (spec) {
      var styles = {};
      styles[spec.id] = styleFor(spec);
      var layer = L.vectorGrid.protobuf(tileUrl(cfg, spec), {
        rendererFactory: L.canvas.tile,
        vectorTileLayerStyles: styles,
        // Outlines are drawn over the choropleth but let clicks through to the area beneath (a canvas outline
        // would otherwise take every click inside its district).
        interactive: spec.kind === "choropleth",
        maxNativeZoom: 20,
        // Lower panes draw first: the choropleth under the outlines under the asset markers.
        pane: spec.kind === "choropleth" ? "tilePane" : "overlayPane",
        attribution: ""
      });
      layer.on("click", function (e) {
        var box = popup(spec, e.layer.properties || {}, map.getZoom(), dom);
        if (box) { L.popup({maxWidth: 320}).setLatLng(e.latlng).setContent(box).openOn(map); }
      });
      layer.on("loading", function () { loading += 1; document.body.setAttribute("data-tiles-loaded", "0"); });
      layer.on("load", function () {
        loading -= 1;
        if (loading <= 0) {
          document.body.setAttribute("data-tiles-loaded", "1");
          if (window.assetMapTilesDrawnAt === undefined) { window.assetMapTilesDrawnAt = performance.now(); }
        }
      });
      if (spec.shown) { layer.addTo(map); }
      made.push({id: spec.id, title: spec.title, layer: layer});
    });
    return made;
  }

  // ---- assets as tiles: groups (count > 1) as circles sized by their count, single assets as category-coloured dots.
  // A tile property holding a list (offers) arrives as JSON text.
  function parsed(p) {
    var out = {};
    Object.keys(p).forEach(function (k) { out[k] = p[k]; });
    if (typeof out.offers === "string") {
      try { out.offers = JSON.parse(out.offers); } catch (e) { out.offers = [out.offers]; }
    }
    return out;
  }

  // Over 10 px, as Leaflet takes a smaller circle for a marker and asks it for a latlng a tile's point does not
  // have (a click would throw); 22 px across is also the size of the markers drawn from the API.
  var POINT_RADIUS = 11;

  // opts: {styleOf(category), shown(category), popup(properties, id), onLoad()}
  function addAssets(map, cfg, opts) {
    if (!cfg.asset_tiles || !L.vectorGrid) { return null; }
    var spec = {id: "assets", query: cfg.asset_tiles.query};
    var layer = L.vectorGrid.protobuf(tileUrl(cfg, spec), {
      rendererFactory: L.canvas.tile,
      interactive: true,
      maxNativeZoom: 20,
      pane: "markerPane",
      attribution: "",
      vectorTileLayerStyles: {
        assets: function (p) {
          if (!opts.shown(p.category)) { return []; }  // an empty style list draws nothing
          var colour = opts.styleOf(p.category).color;
          var n = p.count || 1;
          if (n > 1) {
            return {radius: Math.min(12 + 4 * Math.log(n) / Math.LN10, 24), fill: true, fillColor: colour,
                    fillOpacity: 0.55, stroke: true, color: "#ffffff", weight: 1.5};
          }
          return {radius: POINT_RADIUS, fill: true, fillColor: colour, fillOpacity: p.stale ? 0.35 : 0.95, stroke: true,
                  color: p.stale ? colour : "#0b0c0c", weight: p.stale ? 2 : 1, dashArray: p.stale ? "2,2" : null};
        }
      }
    });
    layer.on("click", function (e) {
      var p = parsed(e.layer.properties || {});
      // A point symbolizer lives in tile pixels and has no latlng of its own: the pointer's position stands in.
      var at = e.originalEvent ? map.mouseEventToLatLng(e.originalEvent) : e.latlng;
      if (p.count && p.count > 1) {
        map.setView(at, Math.min(map.getZoom() + 2, 18));
        return;
      }
      L.popup({maxWidth: 320}).setLatLng(at).setContent(opts.popup(p, p.id)).openOn(map);
    });
    layer.on("load", function () { opts.onLoad(); });
    layer.addTo(map);
    return layer;
  }

  window.assetMapTiles = {add: add, addAssets: addAssets};
}());
