"""Source connectors behind the :class:`~provisor.engine.model.Source` port (docs/sources.md).

One module per connector, each normalising what it reads to Entra's source attribute names:
:mod:`.scim` (any SCIM 2.0 directory) and :mod:`.files` (CSV and JSON-lines HR exports).
"""
