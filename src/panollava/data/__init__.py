"""Data: panorama loading, QuIC-360 tables and datasets, validation, downloader, synthetic
panoramas, tokenizer for tiny models and the PanoLLaVA collate.

Import from the submodules (``panollava.data.quic360``, ``.datasets``, ``.collate`` …); this
package stays import-light because :mod:`panollava.config` imports ``panollava.data.schema``.
"""
