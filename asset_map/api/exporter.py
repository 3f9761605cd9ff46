"""One export: a layer, a format and a filter, as the web and the CLI both run it, with the audit record of who
took which rows."""

import logging
from dataclasses import dataclass
from datetime import date

from asset_map import access, disclosure
from asset_map.api import csv_, geojson, gpkg, layers
from asset_map.config import attribution_lines
from asset_map.errors import InputError
from asset_map.store.assets import AssetFilter

log = logging.getLogger(__name__)
FORMATS = {"geojson": geojson.MEDIA_TYPE, "gpkg": gpkg.MEDIA_TYPE, "csv": csv_.MEDIA_TYPE}
ALL = "all"  # GeoPackage only: every layer in one file


@dataclass
class Export:
    engine: object
    layer_id: str
    fmt: str
    flt: AssetFilter
    role: str
    actor: str
    settings: dict

    @classmethod
    def make(cls, engine, layer_id, fmt, args, *, role, actor, settings):
        """Check everything before the first byte is sent, so a bad request is a clean 400/404."""
        if fmt not in FORMATS:
            msg = f"Unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}."
            raise InputError(msg)
        if layer_id == ALL and fmt != "gpkg":
            msg = "Every layer at once ('all') is offered as a GeoPackage only: use all.gpkg."
            raise InputError(msg)
        export = cls(engine, layer_id, fmt, AssetFilter.from_args(args), role, actor, settings)
        export.layers()  # raises NotFound for an unknown layer
        return export

    def layers(self):
        if self.layer_id == ALL:
            return layers.available(self.engine, self.role)
        layer = layers.get(self.engine, self.layer_id, self.role)
        if self.fmt == "gpkg" and layer.id != "districts":
            # Districts ride along in a GeoPackage so the layer opens in QGIS with its context.
            return [layer, layers.get(self.engine, "districts", self.role)]
        return [layer]

    @property
    def filename(self):
        return f"asset-map-{self.layer_id}-{date.today():%Y%m%d}.{self.fmt}"

    @property
    def media_type(self):
        return FORMATS[self.fmt]

    def _kwargs(self):
        return {"role": self.role, "attribution": attribution_lines(self.settings),
                "licence": self.settings["LICENCE"], "suppress_below": disclosure.method(self.settings)}

    def record(self, rows, complete=True):
        """The audit event; an export cut short (client gone) is logged as incomplete, with the rows sent."""
        details = {"format": self.fmt, "filters": self.flt.as_args(), "role": self.role, "complete": complete}
        try:
            with self.engine.begin() as conn:
                access.record_read(conn, actor=self.actor, target=self.layer_id, details=details, rows=rows)
        except Exception:  # noqa: BLE001 - the download already happened; losing its log line must be seen
            log.exception("could not record the export of %s", self.layer_id)

    def stream(self, **options):
        """Chunks of bytes (GeoJSON or CSV), recorded in the audit log when done."""
        layer = self.layers()[0]
        if self.fmt == "geojson":
            return geojson.stream(self.engine, layer, self.flt, filters=self.flt.as_args() or None,
                                  on_done=self.record, **self._kwargs())
        return csv_.stream(self.engine, layer, self.flt, on_done=self.record, **self._kwargs(), **options)

    def write(self, path, **options):
        """Write to a file; returns {layer id: rows}."""
        kwargs = self._kwargs()
        if self.fmt == "gpkg":
            counts = gpkg.write(path, self.engine, self.layers(), self.flt, **kwargs)
            self.record(sum(counts.values()))
            return counts
        done = {}
        layer = self.layers()[0]
        module = geojson if self.fmt == "geojson" else csv_
        module.write(path, self.engine, layer, self.flt, on_done=lambda n, ok: done.update(n=n, ok=ok),
                     **kwargs, **options)
        self.record(done["n"], done["ok"])
        return {layer.id: done["n"]}

    def gpkg_temp(self, directory=None):
        path, counts = gpkg.to_temp(self.engine, self.layers(), self.flt, directory=directory, **self._kwargs())
        self.record(sum(counts.values()))
        return path, counts
