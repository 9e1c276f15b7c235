"""The report's page: the document model and its Markdown/HTML (``document.py``), tables, figures,
architecture cards, caveats and provenance as text, and how numbers, paths and record text are written."""
