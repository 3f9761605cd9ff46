"""GeoPackage for QGIS: several layers in one file, written in batches from a server-side cursor (constant memory),
with the attribution and licence in the GeoPackage metadata tables and in each layer's description."""

import os
import tempfile

from asset_map.api import rows

# geopandas, pandas, shapely and pyogrio (GDAL) are imported by the functions that write: a serving process loads
# them with its first GeoPackage download, not at start-up.

MEDIA_TYPE = "application/geopackage+sqlite3"
BATCH = 20_000
_DTYPES = {"integer": "Int64", "number": "float64", "date": "datetime64[ms]", "datetime": "datetime64[ms, UTC]"}


def _frame(layer, batch):
    import geopandas as gpd
    import pandas as pd
    import shapely

    names = [c.name for c in layer.columns]
    data = {"id": [r[0] for r in batch]}
    for i, col in enumerate(layer.columns, start=1):
        values = [r[i] for r in batch]
        if col.type == "array":
            values = [None if v is None else ";".join(v) for v in values]
        data[col.name] = values
    frame = pd.DataFrame(data, columns=["id"] + names)
    for col in layer.columns:
        if col.type in _DTYPES:
            if col.type.startswith("date"):
                frame[col.name] = pd.to_datetime(frame[col.name], utc=col.type == "datetime")
            frame[col.name] = frame[col.name].astype(_DTYPES[col.type])
    if layer.id_type == "integer":
        frame["id"] = frame["id"].astype("int64")
    geoms = shapely.from_wkb([bytes(r[-1]) if r[-1] is not None else None for r in batch])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)


def write_layer(path, engine, layer, flt, *, role, attribution, licence, suppress_below=5, first=False):
    """Append ``layer`` to the GeoPackage at ``path``; returns the rows written."""
    fields = ", ".join([layer.id_sql] + [c.sql for c in layer.columns] + [f"ST_AsBinary({rows.geometry_sql(layer)})"])
    sql, params = rows.select_sql(layer, flt, role=role, suppress_below=suppress_below, fields=fields)
    text_ = "\n".join(attribution + [f"Licence: {licence}"])
    meta = {"TITLE": layer.title, "ATTRIBUTION": " | ".join(attribution), "LICENCE": licence}
    options = {"DESCRIPTION": f"{layer.description}\n\n{text_}", "IDENTIFIER": layer.title,
               # Ids are the database's: a stable key for joins across exports.
               "FID": "fid"}
    n = 0
    for batch in rows.stream(engine, sql, params, batch=BATCH):
        _write(path, _frame(layer, batch), layer, meta, options, append=n > 0, first=first and n == 0,
               attribution=attribution, licence=licence)
        n += len(batch)
    if n == 0:
        _write(path, _frame(layer, []), layer, meta, options, append=False, first=first,
               attribution=attribution, licence=licence)
    return n


def _write(path, frame, layer, meta, options, *, append, first, attribution, licence):
    import pyogrio

    """The first batch of a layer creates it (with its description and metadata); later batches append. A file that
    already holds other layers is opened for appending either way."""
    kwargs = {}
    if not append:
        kwargs.update(layer_metadata=meta, layer_options=options)
    if first and not append:
        kwargs["dataset_metadata"] = {"ATTRIBUTION": " | ".join(attribution), "LICENCE": licence,
                                      "PRODUCER": "asset-map"}
        # GeoPackage 1.2: the newest that the GDAL inside older QGIS releases opens without a warning.
        kwargs["dataset_options"] = {"VERSION": "1.2"}
    pyogrio.write_dataframe(frame, path, layer=layer.id.replace("-", "_"), driver="GPKG",
                            geometry_type=layer.geometry_type, promote_to_multi=layer.polygonal,
                            append=append or (not first and os.path.exists(path)), **kwargs)


def write(path, engine, layers, flt, **kwargs):
    """A GeoPackage of ``layers`` (in order) at ``path``, replacing any file there; returns {layer id: rows}."""
    if os.path.exists(path):
        os.remove(path)
    counts = {}
    for i, layer in enumerate(layers):
        counts[layer.id] = write_layer(path, engine, layer, flt, first=i == 0, **kwargs)
    return counts


def to_temp(engine, layers, flt, *, directory=None, **kwargs):
    """Write to a temporary file (GeoPackage is SQLite: it cannot be streamed as it is written); returns
    (path, counts). The caller removes the file."""
    fd, path = tempfile.mkstemp(suffix=".gpkg", dir=directory)
    os.close(fd)
    try:
        counts = write(path, engine, layers, flt, **kwargs)
    except BaseException:
        os.remove(path)
        raise
    return path, counts
