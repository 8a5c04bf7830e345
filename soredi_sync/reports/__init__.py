"""How results are shown to people, for the CLI and the demo: query results and routing
decisions on a rich console (:mod:`.console`); audit reports as a table, CSV, JSON and XLSX
(:mod:`.audit`) or one self-contained HTML page (:mod:`.audit_page`, :mod:`.html`); the FDIS91
adoption series and its plots (:mod:`.adoption`)."""
