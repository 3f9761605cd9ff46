"""Open Referral UK (HSDS-UK 3.0): the feed asset-map publishes under ``/oruk`` and the import of a partner's feed.

``publish`` builds the API's JSON from the store (no Flask), ``taxonomies`` the taxonomies, ``ids`` the stable UUIDs
and ``feed`` reads someone else's feed into a register through the one importer.
"""
